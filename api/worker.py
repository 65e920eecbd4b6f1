"""``python -m api.worker``: one job-runner process (what `codesign worker` and each of
`codesign serve --workers N` run). SIGTERM/SIGINT: the running job stops between batches
and goes back to the queue; another worker resumes it from its stored batches."""

from __future__ import annotations

import argparse
import logging
import os
import signal

from api.db.migrate import open_database
from api.runner import Runner, RunnerConfig


def run_worker(
    database_url: str | None,
    poll_s: float = 0.5,
    heartbeat_s: float = 2.0,
    stale_after_s: float = 30.0,
    ray_address: str | None = None,
) -> None:
    ray_address = ray_address or os.environ.get("CODESIGN_RAY_ADDRESS")
    _, S = open_database(database_url)
    cfg = RunnerConfig(
        poll_s=poll_s, heartbeat_s=heartbeat_s, stale_after_s=stale_after_s, ray_address=ray_address
    )
    runner = Runner(S, cfg)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop(release=True))
    runner.run_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m api.worker", description=__doc__)
    p.add_argument("--db", default=None, help="database URL (default: CODESIGN_DATABASE_URL)")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between queue polls")
    p.add_argument("--heartbeat", type=float, default=2.0, help="seconds between heartbeats")
    p.add_argument(
        "--stale-after", type=float, default=30.0, help="a job without heartbeat this long resumes"
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster for executor: ray jobs (default: CODESIGN_RAY_ADDRESS, else local)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(a.db, a.poll, a.heartbeat, a.stale_after, a.ray_address)


if __name__ == "__main__":
    main()
