"""Prefix-cache model: exact block-level LRU simulation and an analytic hit-ratio curve."""

from codesign.kvcache.analytic import HitCurve, hit_curve
from codesign.kvcache.schedule import Replay, replay_schedule
from codesign.kvcache.simulate import SimResult, simulate

__all__ = ["HitCurve", "Replay", "SimResult", "hit_curve", "replay_schedule", "simulate"]
