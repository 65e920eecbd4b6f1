"""`codesign serve`, `codesign worker` and `codesign keys`: run the service and manage its
API keys (the service itself lives in ``api/``, imported only when a command runs)."""

from __future__ import annotations

import ipaddress
import os

import typer

from codesign.cli.common import (
    JSON_OPTION,
    console,
    err_console,
    print_json,
    print_table,
    user_errors,
)

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
DB_OPTION = typer.Option(
    None, "--db", help="Database URL (default: CODESIGN_DATABASE_URL, else SQLite in ~/.codesign)."
)
STALE_AFTER_OPTION = typer.Option(
    30.0, "--stale-after", min=1, help="Seconds without heartbeat before a job resumes."
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@user_errors
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    db: str = DB_OPTION,
    workers: int = typer.Option(1, "--workers", min=0, help="Job-runner processes to start."),
    stale_after: float = STALE_AFTER_OPTION,
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Run the REST API (OpenAPI at /docs) with WORKERS job-runner processes on one
    database. Without API keys it binds to 127.0.0.1 only, whatever --host says."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from api.app import create_app
    from api.db.engine import default_database_url
    from api.settings import Settings

    url = db or default_database_url()
    app = create_app(Settings.from_env(database_url=url))  # migrates the database
    if not app.state.codesign.keys.keys_configured() and not _is_loopback(host):
        console.print(
            f"[yellow]no API keys configured: binding to 127.0.0.1, not {host}[/] "
            "(create one with `codesign keys create NAME --scope write` to serve others)",
            highlight=False,
        )
        host = "127.0.0.1"
    elif not app.state.codesign.keys.keys_configured():
        console.print("no API keys configured: serving localhost only, without auth")
    from api.supervisor import WorkerPool

    pool = WorkerPool(workers, {**os.environ, "CODESIGN_DATABASE_URL": url}, stale_after)
    console.print(
        f"codesign API on http://{host}:{port} (docs at /docs), {workers} job worker(s) "
        "(restarted if they die), "
        f"database {make_url(url).render_as_string(hide_password=True)}",
        highlight=False,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
    finally:
        pool.stop()


@user_errors
def worker_command(
    db: str = DB_OPTION,
    poll: float = typer.Option(0.5, "--poll", min=0.01, help="Seconds between queue polls."),
    stale_after: float = STALE_AFTER_OPTION,
    ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster for ray jobs."),
) -> None:
    """Run one job-runner process: claim queued jobs from the database and run them
    (SIGTERM puts the running job back in the queue; another worker resumes it)."""
    import logging

    from api.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(db, poll_s=poll, stale_after_s=stale_after, ray_address=ray_address)


def _sessions(db: str | None):
    from api.db.migrate import open_database

    return open_database(db)[1]


@keys_app.command("create")
@user_errors
def keys_create(
    name: str = typer.Argument(..., help="A name for the key (recorded as the jobs' owner)."),
    scope: str = typer.Option("read", "--scope", help="read | write"),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API key and print it once (only its hash is stored). From then on the
    server requires a key on every endpoint but /healthz."""
    from api.auth import create_key

    token = create_key(_sessions(db), name, scope)
    if as_json:
        print_json({"name": name, "scope": scope, "key": token})
        return
    console.print(f"{token}", highlight=False)
    err_console.print(f"key {name!r} ({scope}); shown once, store it now", highlight=False)


@keys_app.command("list")
@user_errors
def keys_list(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """API keys (names, scopes, prefixes; never the keys)."""
    from api.auth import list_keys

    rows = [
        {
            "name": k.name,
            "scope": k.scope,
            "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked": k.revoked,
        }
        for k in list_keys(_sessions(db))
    ]
    if as_json:
        print_json(rows)
        return
    cols = ["name", "scope", "prefix", "created_at", "last_used_at", "revoked"]
    print_table("API keys", cols, [[r[c] for c in cols] for r in rows])


@keys_app.command("revoke")
@user_errors
def keys_revoke(name: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Revoke a key (requests with it get 401)."""
    from api.auth import revoke_key

    revoke_key(_sessions(db), name)
    console.print(f"revoked {name!r}", highlight=False)
