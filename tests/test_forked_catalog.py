"""A synchronous Catalog across ``os.fork()``: what a multiprocessing pool (fork, the
default start method on Linux) does to a catalog a script opened at module level.

The child gets the parent's event loop, whose epoll instance and wake-up socket the
two processes then share, and none of its threads. Each scenario runs in a
process of its own (a script), so that a hang is a timeout, not a stuck suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import StoreTarget

pytestmark = pytest.mark.timeout(300)

SCRIPT = textwrap.dedent(
    """
    import datetime as dt, json, multiprocessing, os, sys
    import numpy as np
    from catalog_store import Catalog

    url, options = sys.argv[1], json.loads(sys.argv[2]) or None
    DAYS = [dt.date(2000, 1, 1) + dt.timedelta(i) for i in range(20_000)]
    cat = Catalog.open(url, options, create=True)
    cat.create(id="A", frequency="daily")
    cat.write("A", (DAYS, np.arange(20_000.0)))  # a file read by a worker thread
    cat.create(id="B", frequency="annual")

    # A child that only exits, the interpreter's way (finalizers, collection): it
    # must leave the parent's loop as it was.
    pid = os.fork()
    if pid == 0:
        sys.exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

    # The parent goes on, through work that waits for worker threads.
    cat.create(id="C", frequency="daily")
    cat.write("C", (DAYS, np.arange(20_000.0)))
    assert cat.read("C").num_rows == 20_000

    def child(answers):
        try:
            answers.put(int(cat.read("A").num_rows))
            cat.write("B", ([dt.date(2001, 1, 1)], [1.0]))
            answers.put(cat.get("B").observation_count)
        except BaseException as exc:
            answers.put(repr(exc))

    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    worker = fork.Process(target=child, args=(answers,))
    worker.start()
    worker.join(60)
    alive = worker.is_alive()
    if alive:
        worker.kill()
    assert not alive, "the forked child's first call never ended"
    assert worker.exitcode == 0, worker.exitcode
    assert [answers.get(timeout=10), answers.get(timeout=10)] == [20_000, 1]

    # The child's write is the parent's to read; the parent's next commit builds on it.
    assert cat.get("B").observation_count == 1
    cat.write("B", ([dt.date(2002, 1, 1)], [2.0]))
    cat.create(id="D", frequency="daily")
    cat.write("D", (DAYS, np.arange(20_000.0)))
    assert cat.read("B").num_rows == 2 and cat.read("D").num_rows == 20_000
    report = cat.verify()
    assert report.ok, report

    # Closed in a child before any use: closed there, the parent's untouched.
    pid = os.fork()
    if pid == 0:
        cat.close()
        try:
            cat.get("A")
        except RuntimeError as exc:
            os._exit(0 if type(exc).__name__ == "CatalogClosedError" else 2)
        os._exit(3)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert cat.read("A").num_rows == 20_000

    cat.close()

    # Closed before a fork, it stays closed in the child.
    pid = os.fork()
    if pid == 0:
        try:
            cat.get("A")
        except RuntimeError as exc:
            os._exit(0 if "closed" in str(exc) else 2)
        os._exit(3)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    print("ok")
    """
)


def test_a_forked_child_opens_the_catalog_anew_and_leaves_the_parents_alone(
    shared_target: StoreTarget,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, shared_target.url, json.dumps(shared_target.options)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
    # The parent's tasks and connections, collected in a child, are not the child's
    # to report ("Task was destroyed but it is pending", "Unclosed client session").
    assert "Task was destroyed" not in done.stderr and "Unclosed" not in done.stderr, done.stderr
