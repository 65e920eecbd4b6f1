"""Request handling outside the engine steps: fixed, per layer and per uncached prompt token."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.engine import ttft_overhead_s


def test_three_parts_add_up_by_hand() -> None:
    cal = Calibration(
        ttft_overhead_ms={"trtllm": 60.0, "vllm": 5.0, "sglang": 150.0},
        ttft_per_layer_us=500.0,
        ttft_per_input_token_us=4.0,
    )
    got = ttft_overhead_s(cal, ["trtllm", "sglang"], 61, np.array([8192.0, 1024.0]))
    # 60 ms + 61 x 0.5 ms + 8192 x 4 us; 150 ms + 30.5 ms + 1024 x 4 us
    assert got == pytest.approx([0.060 + 0.0305 + 0.032768, 0.150 + 0.0305 + 0.004096])


def test_defaults_leave_out_the_per_token_part() -> None:
    cal = Calibration()
    assert ttft_overhead_s(cal, ["vllm"], 32, 8192.0) == pytest.approx(
        ttft_overhead_s(cal, ["vllm"], 32)
    )


def test_longer_prompts_never_wait_less() -> None:
    cal = load_calibration()
    isl = np.array([128.0, 1024.0, 8192.0, 131072.0])
    got = ttft_overhead_s(cal, ["trtllm"] * 4, 61, isl)
    assert np.all(np.diff(got) >= 0)
    assert cal.ttft_per_input_token_us >= 0


@pytest.mark.parametrize("field", ["ttft_per_layer_us", "ttft_per_input_token_us"])
def test_a_negative_request_handling_time_is_refused(field: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Calibration(**{field: -3.0})
