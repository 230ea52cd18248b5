"""``fincat serve`` and ``fincat api-key``, added to the catalog's command line.

This module is the ``fincat`` entry point: it imports the catalog's typer app,
registers the gateway's commands on it and runs it.
"""

from __future__ import annotations

import copy
import json
import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from catalog_store.cli import app, escape_what_the_terminal_cannot_show
from catalog_store.cli._output import write_output
from catalog_store.sync import Catalog
from gateway.auth import (
    SCOPES,
    KeyConfigError,
    combine_keys,
    hash_token,
    load_keys_file,
    new_token,
    parse_keys,
)
from gateway.settings import (
    ENV_API_KEYS,
    ENV_API_KEYS_FILE,
    ENV_CACHE_BYTES,
    ENV_CACHE_TTL,
    ENV_CREATE,
    ENV_HOST,
    ENV_PORT,
    ENV_RATE_BURST,
    ENV_RATE_LIMIT,
    ENV_ROOT,
    NUMBERS,
    Settings,
    SettingsError,
)

__all__ = ["app", "main"]

#: The uvicorn factory each worker imports; it reads the settings from FINCAT_* variables.
APP_FACTORY = "gateway.app:app_from_env"
#: Where ``export-graphql-schema`` writes by default: the schema's place in the repository.
DEFAULT_SCHEMA = Path("docs/schema.graphql")


def _global_options(ctx: typer.Context) -> tuple[str | None, dict[str, Any]]:
    # The root command's callback leaves --root and --storage-option on ctx.obj.
    obj = ctx.find_root().obj
    root = getattr(obj, "root", None)
    options = dict(getattr(obj, "storage_options", None) or {})
    return (str(root) if root else None), options


def fail(message: str, status: int = 1) -> NoReturn:
    """End the command as every fincat command ends on an error: one line, a status."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(status)


class LogLevel(StrEnum):
    """uvicorn's log levels (``uvicorn.config.LOG_LEVELS``): another word stopped the
    server with a traceback after the catalog was opened."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


@app.command()
def serve(
    ctx: typer.Context,
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            metavar="URL",
            help="Catalog location (default: the global --root or FINCAT_ROOT).",
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help=f"Address to bind [{ENV_HOST}, default {Settings.host}]. "
            "Without API keys only loopback is allowed."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=NUMBERS["port"].low,
            max=NUMBERS["port"].high,
            help=f"Port to listen on [{ENV_PORT}, default {Settings.port}].",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each has its own cache).")
    ] = 1,
    cache_ttl: Annotated[
        float | None,
        typer.Option(
            "--cache-ttl",
            min=NUMBERS["cache_ttl"].low,
            help="Seconds a worker may serve the latest version before asking the store "
            f"again [{ENV_CACHE_TTL}, default {Settings.cache_ttl}].",
        ),
    ] = None,
    cache_bytes: Annotated[
        int | None,
        typer.Option(
            "--cache-bytes",
            min=NUMBERS["cache_bytes"].low,
            help=f"Byte bound of each worker's cache [{ENV_CACHE_BYTES}, "
            f"default {Settings.cache_bytes}].",
        ),
    ] = None,
    api_keys: Annotated[
        Path | None,
        typer.Option(
            "--api-keys",
            metavar="FILE",
            help="JSON or TOML file of hashed API keys (see `fincat api-key`), beside those "
            f"of {ENV_API_KEYS_FILE} and {ENV_API_KEYS}.",
        ),
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit",
            min=NUMBERS["rate_limit"].low,
            help="Requests per second per key and worker; 0 is off "
            f"[{ENV_RATE_LIMIT}, default {Settings.rate_limit}].",
        ),
    ] = None,
    rate_burst: Annotated[
        int | None,
        typer.Option(
            "--rate-burst",
            min=NUMBERS["rate_burst"].low,
            help=f"Requests a key may make at once [{ENV_RATE_BURST}, "
            f"default {Settings.rate_burst}].",
        ),
    ] = None,
    create: Annotated[
        bool | None,
        typer.Option(
            "--create", help=f"Initialise an empty catalog if there is none [{ENV_CREATE}]."
        ),
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", case_sensitive=False, help="uvicorn's log level.")
    ] = LogLevel.info,
) -> None:
    """Serve the catalog over HTTP (REST, OpenAPI at /schema).

    Every setting is read from its FINCAT_* environment variable; an option on
    the command line wins. Without API keys the server runs in local development
    mode (no authentication) and refuses any address but loopback.
    """
    default_root, storage_options = _global_options(ctx)
    location = os.path.expanduser(root) if root else default_root
    if not location:
        raise typer.BadParameter("where is the catalog?", param_hint="'--root'")
    options = {
        "host": host,
        "port": port,
        "cache_ttl": cache_ttl,
        "cache_bytes": cache_bytes,
        "rate_limit": rate_limit,
        "rate_burst": rate_burst,
        "create": create,
    }
    # Options default to None, "not given", so that a default never hides the environment.
    given = {name: value for name, value in options.items() if value is not None}
    try:
        # click checks the lower bounds; this names the option for the rest (infinity).
        for name, value in given.items():
            if name in NUMBERS and isinstance(value, int | float):
                NUMBERS[name].check("--" + name.replace("_", "-"), value)
        keys = load_keys_file(api_keys) if api_keys is not None else ()
        from_env = Settings.from_env({**os.environ, ENV_ROOT: location})
        settings = from_env.with_changes(
            storage_options={**from_env.storage_options, **storage_options},
            api_keys=combine_keys(keys, from_env.api_keys),
            **given,
        )
        settings.check_bind()
    except (SettingsError, KeyConfigError) as exc:
        fail(str(exc), status=2)
    # What fails as a server starts is a traceback and uvicorn's exit status 3 ("lost a
    # race, run again" to a script), so it is tried here first, as the one-line error
    # of any command: the catalog opened as each worker opens it, then the address.
    Catalog.open(
        settings.root,
        dict(settings.storage_options) or None,
        create=settings.create,
        options=settings.catalog_options(),
    ).close()
    try:
        _try_listen(settings.host, settings.port)
    except OSError as exc:
        fail(f"cannot listen on {settings.host} port {settings.port}: {exc.strerror or exc}")
    # Workers are separate processes: they rebuild these settings from the environment.
    os.environ.update(settings.to_env())
    # The keys travel as hashes in FINCAT_API_KEYS; reading the file again would double them.
    os.environ.pop(ENV_API_KEYS_FILE, None)
    mode = f"{len(settings.api_keys)} API key(s)" if settings.auth_enabled else "no authentication"
    where = f"http://{settings.host}:{settings.port}"
    if not settings.port:
        where = f"http://{settings.host} on a port the system chooses (uvicorn's log names it)"
    typer.echo(f"fincat serving {settings.root} on {where} ({mode})", err=True)
    server: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": workers,
        "log_level": log_level.value,
        "log_config": _LOG_CONFIG,
        # Client addresses key the rate limit; a proxy's headers are not trusted by default.
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
    }
    failed = _run(server)
    if failed:
        # Something changed since the checks above (the store, the port); uvicorn has
        # logged what.
        fail(f"{failed} (its log above says why)")


#: uvicorn's own logging, with its access log on stderr as the rest of it: by
#: default it goes to stdout, and ``2>gateway.log`` kept every line but those.
_LOG_CONFIG = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
_LOG_CONFIG["handlers"]["access"]["stream"] = "ext://sys.stderr"


def _run(options: dict[str, Any]) -> str | None:
    """Serve until stopped, as ``uvicorn.run`` does; what did not start, if anything.

    With workers, uvicorn's supervisor stops them all when one fails to start and
    then returns as it does when told to stop, and ``uvicorn.run`` ends as if all
    went well. So the supervisor is run here, as ``uvicorn.run`` runs it, and the
    workers' exit statuses tell the two apart.
    """
    try:
        if options["workers"] == 1:
            uvicorn.run(APP_FACTORY, **options)
            return None
        config = uvicorn.Config(APP_FACTORY, **options)
        sock = config.bind_socket()
    except SystemExit as exc:
        if exc.code != STARTUP_FAILURE:
            raise
        return "the server did not start"
    with sock:
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
    if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        return "a worker did not start, so the server stopped"
    return None


def _try_listen(host: str, port: int) -> None:
    """Bind every address uvicorn will bind for ``host`` and ``port``, then let go.

    Raises OSError as uvicorn would meet it: a name that does not resolve, an address
    in use or not on this machine. Sockets are made as asyncio's server makes them
    (SO_REUSEADDR, IPv6 only on IPv6 addresses), so this refuses only what it refuses.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)


@app.command("export-graphql-schema")
def export_graphql_schema(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the SDL, relative to the current directory; '-' for "
            "standard output.",
        ),
    ] = DEFAULT_SCHEMA,
) -> None:
    """Write the GraphQL schema served at /graphql, in SDL.

    The default path is the schema's place in the fincat repository, run from its root.
    """
    from gateway.graphql.schema import schema_sdl  # the schema loads only for this command

    text = schema_sdl()
    if str(output) == "-":
        write_output(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        hint = (
            " (the default is relative to the current directory: run it at the root of "
            "the fincat repository, or give --output FILE, or -o - for standard output)"
            if output == DEFAULT_SCHEMA
            else ""
        )
        fail(f"cannot write {output}: {exc.strerror}{hint}")
    typer.echo(f"wrote {output}", err=True)


@app.command("api-key")
def api_key(
    name: Annotated[str, typer.Argument(help="A name for the key (logs, rate limits).")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help=f"Repeatable; one of {', '.join(SCOPES)}. Default: read."),
    ] = None,
) -> None:
    """Make a new API key: prints the token once, and the entry for the key file.

    Only the entry (the token's SHA-256) goes into the server's key file; the
    token goes to the client.
    """
    scopes = scope or ["read"]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope {unknown[0]!r}", param_hint="'--scope'")
    token = new_token()
    entry = {"name": name, "sha256": hash_token(token), "scopes": sorted(set(scopes))}
    try:
        # The rules serve reads key files with, so that it never refuses this entry.
        parse_keys([entry], "the new key")
    except KeyConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="'NAME'") from None
    write_output(
        f"token (give it to the client; it is not stored): {token}\n"
        f"key file entry: {json.dumps(entry)}\n"
    )


def main() -> None:
    """Entry point of the ``fincat`` script."""
    escape_what_the_terminal_cannot_show()
    app(prog_name="fincat")


if __name__ == "__main__":  # ``python -m gateway.cli``, as the tests start servers
    main()
