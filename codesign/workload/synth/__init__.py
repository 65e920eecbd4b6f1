"""Synthetic agent sessions: parameters, presets, the generator and fitting to real traces."""

from codesign.workload.synth.dist import Dist
from codesign.workload.synth.fit import fit_fleet_params
from codesign.workload.synth.generator import generate
from codesign.workload.synth.params import ArrivalParams, ContextClass, SubAgentParams, SynthParams
from codesign.workload.synth.presets import PRESETS, preset

__all__ = [
    "PRESETS",
    "ArrivalParams",
    "ContextClass",
    "Dist",
    "SubAgentParams",
    "SynthParams",
    "fit_fleet_params",
    "generate",
    "preset",
]
