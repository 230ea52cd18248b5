"""The deployment material in infra/: every file parses; the health checks, probes and
commands it names exist in the app and the CLI; the alerts and the dashboard use
metrics the gateway exports; the alert rules pass their promtool unit tests.

promtool comes from the Debian package "prometheus" (``bash scripts/install-promtool``);
without it the tests that run it are skipped and say so.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from catalog_store import Catalog, keys
from gateway.app import create_app
from gateway.cli import app as cli_app
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
PROMETHEUS = INFRA / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = (PROMETHEUS / "alerts.test.yml", PROMETHEUS / "alerts-days.test.yml")
DASHBOARD = INFRA / "grafana" / "fincat-dashboard.json"
K8S = INFRA / "k8s"
AWS = INFRA / "aws"
RUNBOOK = ROOT / "docs" / "operations.md"

#: On the PATH, or where scripts/install-promtool puts it (beside this Python).
PROMTOOL = shutil.which("promtool") or shutil.which(
    "promtool", path=str(Path(sys.executable).parent)
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed; `bash scripts/install-promtool` installs it "
    "(Debian package prometheus)",
)

#: Metrics the rules use that other programs export.
EXTERNAL = {
    "up": "Prometheus itself, for every scrape target",
    "kube_job_status_condition": "kube-state-metrics, for every Kubernetes Job",
}
#: Metrics the rules use that the gateway does not export yet. Each test of one is an
#: expected failure (strict): once the gateway exports it, take it off this list.
_PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in _PROMQL_WORDS}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def used_metrics() -> set[str]:
    exprs = [str(rule["expr"]) for rule in alert_rules()] + dashboard_queries()
    return set().union(*(metric_names(expr) for expr in exprs))


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                yield path, doc


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    for _, doc in k8s_documents():
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in infra/k8s")


def dockerfile_instructions() -> list[str]:
    text = (INFRA / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_metric_names_of_an_expression() -> None:
    expr = (
        'sum by (job, le) (rate(a_bucket{route!~"/health/.*|x{y}"}[5m])) / on (job) '
        "b_total offset 5m > 0.8 * 1073741824 and absent(up{job='x'} == 1) or time() - c:d"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "up", "c:d"}


# -- every file parses --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p for p in INFRA.rglob("*") if p.suffix in (".yml", ".yaml", ".json")),
    ids=lambda p: str(p.relative_to(INFRA)),
)
def test_every_file_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        assert isinstance(json.loads(text), dict)
    else:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        assert docs, f"{path} holds no document"
        assert all(isinstance(doc, dict) for doc in docs)


# -- alert rules -------------------------------------------------------------------


@needs_promtool
def test_promtool_checks_the_rules_and_the_prometheus_config() -> None:
    rules = promtool("check", "rules", ALERTS)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = promtool("test", "rules", *ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(ALERT_TESTS)


@needs_promtool
def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:query_{n}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$job", "fincat"),
        }
        for n, expr in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in ALERT_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case["alert_rule_test"]:
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts without a firing case"
    assert names - silent == set(), "alerts without a case where they stay silent"
    assert (fires | silent) - names == set(), "tests of alerts that do not exist"


def test_every_alert_has_a_severity_and_a_runbook_section() -> None:
    headings = re.findall(r"^#+ (.+)$", RUNBOOK.read_text(encoding="utf-8"), re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).strip().replace(" ", "-") for h in headings}
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, rule["alert"]


def test_the_memory_alert_follows_the_deployment_limit() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "FincatMemoryHigh"]
    threshold = re.search(r">\s*0\.8\s*\*\s*(\d+)", rule["expr"])
    assert threshold is not None
    deployment = k8s_object("Deployment", "fincat")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    assert int(threshold.group(1)) == int(limit[:-2]) * 2**30


# -- the metrics the rules use exist --------------------------------------------------


@pytest.fixture(scope="module")
def exported_metrics() -> set[str]:
    """Sample names on /metrics after a few requests of each kind."""
    root = f"memory://infra-{uuid.uuid4().hex}"
    catalog = Catalog.open(root, create=True)
    catalog.verify(record=True)  # as the scheduled verify job does
    catalog.close()
    settings = Settings(root=root, rate_limit=0, monitor_interval=0.05)
    with TestClient[Litestar](create_app(settings)) as client:
        created = client.post(
            "/v1/series",
            json={"id": "GDP", "frequency": "quarterly", "title": "GDP", "source": "BEA"},
        )
        assert created.status_code == 201, created.text
        assert client.get("/v1/series/GDP").status_code == 200
        assert client.get("/v1/series/NOPE").status_code == 404
        assert client.post("/graphql", json={"query": "{ series(id: "}).status_code == 200
        assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
        assert client.get("/health/ready").status_code == 200
        for _ in range(200):  # the monitor fills in its figures in the background
            text = client.get("/metrics").text
            if "fincat_source_last_updated_timestamp_seconds{" in text:
                break
            time.sleep(0.05)
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def _metric_params() -> list[str]:
    return sorted(used_metrics() - EXTERNAL.keys())


@pytest.mark.parametrize("name", _metric_params())
def test_the_gateway_exports_each_metric_the_rules_use(
    name: str, exported_metrics: set[str]
) -> None:
    assert name in exported_metrics


def test_the_list_of_outside_metrics_is_current() -> None:
    used = used_metrics()
    assert EXTERNAL.keys() <= used


# -- health checks, probes and commands are real --------------------------------------


def test_health_checks_and_probes_use_real_routes() -> None:
    paths: dict[str, str] = {}
    (healthcheck,) = [i for i in dockerfile_instructions() if i.startswith("HEALTHCHECK")]
    found = re.search(r"https?://[^/\s'\"]+(/[^\s'\")]*)", healthcheck)
    assert found is not None
    paths["Dockerfile HEALTHCHECK"] = found.group(1)
    deployment = k8s_object("Deployment", "fincat")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {port["name"] for port in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        paths[f"Deployment {probe}"] = container[probe]["httpGet"]["path"]
        assert container[probe]["httpGet"]["port"] in port_names
    scrape = load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"][0]
    paths["prometheus.yml"] = scrape["metrics_path"]
    (endpoint,) = load_yaml(K8S / "servicemonitor.yaml")["spec"]["endpoints"]
    paths["ServiceMonitor"] = endpoint["path"]
    assert paths["Dockerfile HEALTHCHECK"] == paths["Deployment livenessProbe"] == "/health/live"
    assert paths["Deployment readinessProbe"] == "/health/ready"

    settings = Settings(root=f"memory://infra-{uuid.uuid4().hex}", create=True)
    with TestClient[Litestar](create_app(settings)) as client:
        routes = {route.path for route in client.app.routes}
        for where, path in paths.items():
            assert path in routes, f"{where}: {path} is not a route of the app"
            assert client.get(path).status_code == 200, where


def _cli_commands() -> dict[str, Any]:
    """The subcommands of ``fincat``, by name (typer's own click commands)."""
    commands: dict[str, Any] = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    return commands


def _check_command(args: list[str], where: str) -> None:
    command = _cli_commands().get(args[0])
    assert command is not None, f"{where}: no command {args[0]!r}"
    options = {opt for param in command.params for opt in param.opts}
    for arg in args[1:]:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in options, f"{where}: {args[0]} has no option {arg}"


def test_commands_in_the_image_and_manifests_are_real() -> None:
    (cmd,) = [i for i in dockerfile_instructions() if i.startswith('CMD ["serve"')]
    _check_command(json.loads(cmd[len("CMD") :]), "Dockerfile CMD")
    for path, doc in k8s_documents():
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        else:
            continue
        for container in pod["containers"]:
            _check_command(container["args"], f"{path.name} {container['name']}")


# -- the image ------------------------------------------------------------------------


def test_the_image_runs_the_gateway_unprivileged() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0].startswith("ARG PYTHON_IMAGE=python:3.11-slim")
    final = instructions[max(i for i, line in enumerate(instructions) if line.startswith("FROM")) :]
    user = next(line.split()[1] for line in final if line.startswith("USER"))
    assert int(user.split(":")[0]) != 0
    assert "EXPOSE 8000" in final
    assert 'ENTRYPOINT ["fincat"]' in final
    deployment = k8s_object("Deployment", "fincat")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
    assert pod["containers"][0]["ports"][0]["containerPort"] == 8000


def test_the_build_context_holds_what_the_image_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for line in dockerfile_instructions():
        if not line.startswith("COPY") or "--from=" in line:
            continue
        for source in line.split()[1:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source.rstrip("/") in included, f"COPY {source}: excluded by .dockerignore"


# -- Kubernetes ---------------------------------------------------------------------


def test_kubernetes_objects_fit_together() -> None:
    listed = load_yaml(K8S / "kustomization.yaml")["resources"]
    optional = {"kustomization.yaml", "servicemonitor.yaml", "secrets.example.yaml"}
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name not in optional)
    deployment = k8s_object("Deployment", "fincat")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = k8s_object("Service", "fincat")
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = k8s_object("HorizontalPodAutoscaler", "fincat")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "fincat"
    assert hpa["spec"]["minReplicas"] >= 2
    secrets = {
        d["metadata"]["name"] for p, d in k8s_documents() if p.name == "secrets.example.yaml"
    }
    accounts = {d["metadata"]["name"] for _, d in k8s_documents() if d["kind"] == "ServiceAccount"}
    for path, doc in k8s_documents():
        if doc["kind"] not in ("Deployment", "CronJob"):
            continue
        spec = doc["spec"]
        pod = (
            spec["jobTemplate"]["spec"]["template"]["spec"]
            if "jobTemplate" in spec
            else (spec["template"]["spec"])
        )
        assert pod["serviceAccountName"] in accounts, path.name
        assert pod["securityContext"]["runAsNonRoot"] is True, path.name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"name": "fincat-config"} in [e["configMapRef"] for e in container["envFrom"]]
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, f"{path.name}: Secret {ref['name']} undocumented"
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, path.name


# -- AWS ----------------------------------------------------------------------------


def _statements(name: str) -> list[dict[str, Any]]:
    document = json.loads((AWS / name).read_text(encoding="utf-8"))
    assert document["Version"] == "2012-10-17"
    return list(document["Statement"])


def _allowed(name: str) -> dict[str, list[str]]:
    """Action -> resources allowed by an IAM policy of infra/aws."""
    allowed: dict[str, list[str]] = {}
    for statement in _statements(name):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            allowed.setdefault(action, []).extend(
                [resources] if isinstance(resources, str) else resources
            )
    return allowed


def _covers(patterns: list[str], key: str) -> bool:
    return any(
        fnmatch.fnmatchcase(f"arn:aws:s3:::example-fincat/catalog/{key}", p) for p in patterns
    )


def test_iam_policies_grant_each_role_only_what_it_does() -> None:
    writer, reader, gc = (_allowed(f"iam-{role}.json") for role in ("writer", "reader", "gc"))
    manifest = keys.manifest_key(42)
    data = keys.data_file_key("GDP", "year=2024")
    shard = keys.shard_file_key(keys.META_DIR, 3)
    xid = keys.shard_file_key(keys.XID_DIR, 3)
    assert set(writer) == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
    assert set(reader) == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
    assert set(gc) == {"s3:ListBucket", "s3:GetObject", "s3:DeleteObject", "s3:PutObject"}
    for key in (manifest, keys.LATEST_HINT, keys.FORMAT_MARKER, data, shard, xid):
        assert _covers(writer["s3:PutObject"], key)
        assert _covers(reader["s3:GetObject"], key)
    # The reader (the verify job) writes only its outcome records.
    assert _covers(reader["s3:PutObject"], keys.VERIFY_STATUS)
    assert _covers(reader["s3:PutObject"], keys.VERIFY_LATEST_STATUS)
    for key in (manifest, keys.LATEST_HINT, keys.FORMAT_MARKER, data):
        assert not _covers(reader["s3:PutObject"], key)
    # gc deletes unreferenced data files and shards, and under retention expired
    # manifests and the floor it raises; never the marker or the hint.
    for key in (data, shard, xid, manifest):
        assert _covers(gc["s3:DeleteObject"], key)
    for key in (keys.LATEST_HINT, keys.FORMAT_MARKER):
        assert not _covers(gc["s3:DeleteObject"], key)
    assert _covers(gc["s3:PutObject"], keys.RETENTION_FLOOR)
    for key in (manifest, keys.LATEST_HINT, keys.FORMAT_MARKER, data):
        assert not _covers(gc["s3:PutObject"], key)


def test_the_bucket_policy_guards_exactly_the_commit_points() -> None:
    statements = {s["Sid"]: s for s in _statements("bucket-policy.json")}
    conditional = statements["CommitPointsOnlyByConditionalCreate"]
    assert conditional["Effect"] == "Deny"
    assert conditional["Action"] == "s3:PutObject"
    assert conditional["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    guarded = conditional["Resource"]
    # manifests and the format marker are created once, with If-None-Match: *
    assert _covers(guarded, keys.manifest_key(0))
    assert _covers(guarded, keys.manifest_key(10**12))
    assert _covers(guarded, keys.FORMAT_MARKER)
    # the advisory hint is overwritten by plain PUTs, and data files need no condition
    assert not _covers(guarded, keys.LATEST_HINT)
    assert not _covers(guarded, keys.data_file_key("GDP", "year=2024"))
    assert not _covers(guarded, keys.shard_file_key(keys.META_DIR, 0))
    deletion = statements["CommitPointsAreDeletedOnlyByRetentionGc"]
    assert deletion["Resource"] == guarded
    assert list(deletion["Condition"]) == ["ArnNotEquals"]


def test_the_lifecycle_aborts_incomplete_multipart_uploads_after_a_day() -> None:
    rules = json.loads((AWS / "lifecycle.json").read_text(encoding="utf-8"))["Rules"]
    aborts = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in aborts] == [1]
    assert all(r["Status"] == "Enabled" for r in rules)
