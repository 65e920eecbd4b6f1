"""The job-worker processes of `codesign serve`: started with the server, restarted when
one dies (a crash or an out-of-memory kill; its job resumes from its stored batches on
whichever worker claims it), stopped with SIGTERM (each hands its running job back to
the queue) when the server stops."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

log = logging.getLogger("codesign.supervisor")


class WorkerPool:
    def __init__(self, n: int, env: dict[str, str], stale_after_s: float, check_s: float = 2.0):
        self.cmd = [sys.executable, "-m", "api.worker", "--stale-after", str(stale_after_s)]
        self.env, self.check_s = env, check_s
        self.procs = [self._start() for _ in range(n)]
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="worker-pool")
        self._thread.start()

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(self.cmd, env=self.env)

    def _watch(self) -> None:
        while not self._stop.wait(self.check_s):
            for i, p in enumerate(self.procs):
                if p.poll() is not None and not self._stop.is_set():
                    log.warning("job worker %s exited with %s; restarting it", p.pid, p.returncode)
                    self.procs[i] = self._start()
                    self.restarts += 1

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout=self.check_s + 1)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
