"""Pure parts of the SDK (codesign.client): no server, no HTTP mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from codesign.client import (
    ApiError,
    AuthError,
    Conflict,
    LimitError,
    NotFound,
    ValidationFailed,
    default_direction,
    error_from_response,
    load_payload,
    parse_sse,
    where_params,
)
from codesign.client_sse import write_files
from codesign.errors import CodesignError, SpecError

# --- parse_sse ----------------------------------------------------------------------------
STREAM = """\
: keep-alive comment
retry: 3000
id: 1
event: status
data: {"status": "running"}

: another comment between events
id: 2
event: progress
data: {"evaluations": 256,
data:  "budget": 8000}

data: no id line here, no event line

id: 4
event:pareto
data:{"pareto_size": 3}
unknown: field ignored

id: 5
event: completed
data: {"status": "completed"}"""


def test_parse_sse_multi_event_stream() -> None:
    events = list(parse_sse(STREAM.split("\n")))
    assert events == [
        (1, "status", '{"status": "running"}'),
        # multi-line data joined with "\n"; only ONE leading space is stripped per line
        (2, "progress", '{"evaluations": 256,\n "budget": 8000}'),
        # the last event id stays in force (SSE spec); the default event type is "message"
        (2, "message", "no id line here, no event line"),
        # no space after the colon is fine too
        (4, "pareto", '{"pareto_size": 3}'),
        # the trailing "completed" event has no blank line after it: NOT dispatched
    ]
    assert json.loads(events[1][2]) == {"evaluations": 256, "budget": 8000}


def test_parse_sse_trailing_event_dispatched_once_terminated() -> None:
    events = list(parse_sse([*STREAM.split("\n"), ""]))
    assert events[-1] == (5, "completed", '{"status": "completed"}')


def test_parse_sse_line_endings_bom_and_edge_cases() -> None:
    lines = [
        "\ufeffid: 7\r\n",  # BOM on the first line, CRLF left on the line
        "event: progress\r\n",
        "data\n",  # a field name without colon: empty value
        "data: x\n",
        "\n",
        "id: 8\n",
        "event: lonely\n",  # no data: not dispatched, and its event type is reset
        "\n",
        "data: y\n",
        "\n",
        "id: abc\n",  # not an integer: None
        "data: z\n",
        "\n",
        "id:\n",  # empty id clears it
        "data: w\n",
        "\n",
    ]
    assert list(parse_sse(lines)) == [
        (7, "progress", "\nx"),
        (8, "message", "y"),
        (None, "message", "z"),
        (None, "message", "w"),
    ]


def test_parse_sse_empty_and_comment_only() -> None:
    assert list(parse_sse([])) == []
    assert list(parse_sse([": ping", "", ": ping", ""])) == []


# --- error mapping ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ApiError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (409, Conflict),
        (413, LimitError),
        (429, LimitError),
        (422, ValidationFailed),
        (500, ApiError),
    ],
)
def test_error_class_by_status(status: int, cls: type[ApiError]) -> None:
    err = error_from_response(status, b'{"detail": "nope"}', "GET /v1/jobs/3")
    assert type(err) is cls
    assert isinstance(err, CodesignError)  # the CLI prints it as one line
    assert err.status == status
    assert err.detail == "nope"
    assert str(err).startswith(f"nope (HTTP {status} from GET /v1/jobs/3)")


def test_error_detail_422_list_joined() -> None:
    body = {
        "detail": [
            {"loc": ["body", "workload", "trace"], "msg": "must be trace:ID", "type": "x"},
            {"loc": ["query", "limit"], "msg": "Value error, at most 1000", "type": "y"},
            {"loc": [], "msg": "whole body", "type": "z"},
        ]
    }
    err = error_from_response(422, json.dumps(body), "POST /v1/jobs")
    assert isinstance(err, ValidationFailed)
    assert err.detail == ("workload.trace: must be trace:ID; query.limit: at most 1000; whole body")


def test_error_detail_non_json_and_empty_bodies() -> None:
    err = error_from_response(502, b"<html>Bad Gateway</html>", "u")
    assert type(err) is ApiError and err.detail == "<html>Bad Gateway</html>"
    assert error_from_response(404, b"", "u").detail == "Not Found"
    assert error_from_response(400, '["not", "a", "dict"]', "u").detail == '["not", "a", "dict"]'
    long = error_from_response(500, "x" * 2000, "u").detail
    assert len(long) < 600 and long.endswith("...")


def test_auth_error_says_how_to_fix() -> None:
    err = error_from_response(401, b'{"detail": "missing API key"}', "GET /v1/jobs")
    assert err.detail == "missing API key"
    assert "CODESIGN_API_KEY" in str(err)


def test_connection_error_message() -> None:
    err = ApiError(0, "cannot reach the server at http://h:1: refused")
    assert err.status == 0 and str(err) == "cannot reach the server at http://h:1: refused"


# --- where, best direction ----------------------------------------------------------------
def test_where_params_from_dict() -> None:
    where = {
        "tokens_per_s_per_user": (50, None),
        "ttft_p90_s": (None, 2.5),
        "chips": (8, 72),
        "usd_per_mtok_output": (None, None),
    }
    assert where_params(where) == [
        "tokens_per_s_per_user>=50",
        "ttft_p90_s<=2.5",
        "chips>=8",
        "chips<=72",
    ]
    assert where_params({"x": [0.1, 1e-7]}) == ["x>=0.1", "x<=1e-07"]  # exact round-trip


def test_where_params_strings_and_errors() -> None:
    assert where_params(None) == [] and where_params({}) == []
    assert where_params(["a >= 1", "b<=2"]) == ["a>=1", "b<=2"]
    with pytest.raises(ValueError, match="METRIC>=VALUE"):
        where_params(["a>1"])
    with pytest.raises(ValueError, match=r"\(lo, hi\)"):
        where_params({"a": 5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"\(lo, hi\)"):
        where_params({"a": (1, 2, 3)})


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("tokens_per_s_per_gpu", "max"),
        ("tokens_per_s_per_user", "max"),
        ("output_tokens_per_s", "max"),
        ("input_tokens_per_s", "max"),
        ("cache_hit_ratio", "max"),
        ("cache_hit_ratio_hbm", "max"),
        ("sessions_per_hour", "max"),
        ("ttft_p90_s", "min"),
        ("tpot_p50_ms", "min"),
        ("usd_per_mtok_output", "min"),
        ("chips", "min"),
        ("joules_per_output_token", "min"),
    ],
)
def test_best_direction_default(metric: str, direction: str) -> None:
    assert default_direction(metric) == direction


# --- spec normalisation -------------------------------------------------------------------
SPEC_YAML = "name: t\nmodel: m\nobjectives: [max tokens_per_s_per_gpu]\n"
SPEC = {"name": "t", "model": "m", "objectives": ["max tokens_per_s_per_gpu"]}


def test_load_payload_from_paths(tmp_path: Path) -> None:
    y = tmp_path / "job.yaml"
    y.write_text(SPEC_YAML)
    j = tmp_path / "job.json"
    j.write_text(json.dumps(SPEC))
    assert load_payload(y) == SPEC  # Path
    assert load_payload(str(y)) == SPEC  # str path
    assert load_payload(str(j)) == SPEC  # JSON file
    yml = tmp_path / "JOB.YML"
    yml.write_text(SPEC_YAML)
    assert load_payload(str(yml)) == SPEC


def test_load_payload_from_text_dict_and_model() -> None:
    assert load_payload(SPEC_YAML) == SPEC
    assert load_payload(json.dumps(SPEC)) == SPEC  # JSON is YAML
    d = dict(SPEC)
    out = load_payload(d)
    assert out == SPEC and out is not d

    class M(BaseModel):
        name: str = "search"
        model: str

    assert load_payload(M(model="m")) == {"model": "m"}  # defaults excluded


def test_load_payload_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="job spec file not found: .*missing.yaml"):
        load_payload(str(tmp_path / "missing.yaml"))
    with pytest.raises(SpecError, match="file not found"):
        load_payload(tmp_path / "missing.txt")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(SpecError, match=r"bad\.yaml: not valid YAML"):
        load_payload(bad)
    with pytest.raises(SpecError, match="expected a mapping at the top level, got list"):
        load_payload("- 1\n- 2\n")
    with pytest.raises(SpecError, match="deployment: give a file path"):
        load_payload(42, "deployment")


# --- export file writing ------------------------------------------------------------------
def test_write_files_creates_folders_and_refuses_escapes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = write_files({"a.yaml": "x", "sub/dir/b.sh": "y"}, out)
    assert (out / "sub/dir/b.sh").read_text() == "y" and len(written) == 2
    with pytest.raises(CodesignError, match="outside"):
        write_files({"../evil": "z"}, out)
    assert not (tmp_path / "evil").exists()
