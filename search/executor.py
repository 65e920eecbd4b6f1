"""Where the expensive chunks of a search run: inline (this process) or as Ray tasks.

The unit of Ray work is a chunk that costs >= 50-100 ms: one simulation-fidelity
verification (``verify_top``: 0.2-2 s each) or one large screening chunk (``SCREEN_CHUNK``
candidates, ~0.5 s); never a single cheap trial (on 2 cores a task round trip of ~2 ms
makes microsecond work slower). Results are returned in submission order and the driver
records them in that order, so a job gives the same front with either executor.

Running on Ray
--------------
``strategy.executor: ray`` (or ``codesign optimize JOB --executor ray``) starts a private
local Ray on demand (``ray.init(address="local")``: all cores of this machine) unless an
address is given. To use an existing cluster::

    # on the head node (Ray >= 2.5x enables token authentication by default and writes
    # the token to ~/.ray/auth_token on the head)
    ray start --head --port 6379
    # on each worker node
    RAY_AUTH_TOKEN=<token> ray start --address HEAD:6379
    # on the client (this package and the same Python/Ray versions installed)
    export RAY_AUTH_TOKEN=<token>           # the head's ~/.ray/auth_token
    codesign optimize job.yaml --executor ray --ray-address HEAD:6379
    # or: RAY_ADDRESS=HEAD:6379 codesign optimize job.yaml --executor ray

``--ray-address`` wins over ``RAY_ADDRESS``; with neither a private local Ray is started
(never an accidental attach to someone else's cluster). A Ray client URL
(``ray://HEAD:10001``) works too. The driver keeps the Optuna study and the Pareto archive;
only evaluation chunks travel (the workload, calibration and trace are put into the
object store once per job). A Ray that this module started is shut down by ``close()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

OBJECT_STORE_BYTES = 256 * 2**20  # a private local Ray: small object store (2-core boxes)


class Executor(Protocol):
    name: str
    workers: int

    def map(self, fn: Callable[..., Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        """``fn(shared, item)`` for each item, yielded in order."""
        ...

    def close(self) -> None: ...


class InlineExecutor:
    name = "inline"
    workers = 1

    def map(self, fn: Callable[..., Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield fn(shared, item)

    def close(self) -> None:
        pass


class RayExecutor:
    """Ray tasks; ``address`` None: ``RAY_ADDRESS`` if set, else a private local Ray."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            addr = address or os.environ.get("RAY_ADDRESS") or "local"
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if addr == "local":
                kw |= {"num_cpus": num_cpus, "object_store_memory": OBJECT_STORE_BYTES}
            ray.init(address=addr, **kw)
            self._started = True
        self.workers = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self._remote: dict[Callable, Any] = {}
        self._shared: dict[int, Any] = {}

    def map(self, fn: Callable[..., Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        ray = self._ray
        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1)(fn)
        key = id(shared)
        if key not in self._shared:  # one object-store copy per shared object
            self._shared[key] = (shared, ray.put(shared))
        ref = self._shared[key][1]
        refs = [self._remote[fn].remote(ref, item) for item in items]
        for r in refs:
            yield ray.get(r)

    def close(self) -> None:
        self._shared.clear()
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(name: str, address: str | None = None) -> Executor:
    if name == "ray":
        return RayExecutor(address)
    return InlineExecutor()
