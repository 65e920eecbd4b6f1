"""Vectorised step-latency model: operations -> rooflines x calibrated efficiencies.

- ``profile``: a model reduced to the constants the step model needs;
- ``hardware``: catalog systems gathered into per-candidate arrays;
- ``step``: one engine step of one worker (GEMMs, experts, attention, communication);
- ``memory``: weights, KV cache and reserves per GPU; ``kv_budget``: the memory each
  engine's setting gives its KV cache (the setting ``codesign export`` writes);
- ``calibration`` / ``fit``: the few fitted parameters and how they are fitted;
- ``predict``: measured rows -> TTFT/TPOT; ``estimate``: one deployment point.
"""

from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.hardware import HwVec, hw_vectors
from codesign.perf.memory import MemoryUse, memory_use
from codesign.perf.profile import ModelProfile, build_profile
from codesign.perf.step import Bytes, Efficiency, Layout, StepLoad, step_time

__all__ = [
    "Bytes",
    "Calibration",
    "Efficiency",
    "HwVec",
    "Layout",
    "MemoryUse",
    "ModelProfile",
    "StepLoad",
    "build_profile",
    "hw_vectors",
    "load_calibration",
    "memory_use",
    "step_time",
]
