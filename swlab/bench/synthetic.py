"""Synthetic telemetry in the exact shapes the collectors produce: for the parsing benchmark,
for unit tests of the analysis, and for trying the notebooks without a run.

Everything is seeded; nothing here is a measurement.
"""

from __future__ import annotations

import mmap
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa

from swlab.analysis.dataset import RunData, tidy_strings
from swlab.analysis.logs import parse_log_events
from swlab.localcloud.report_lines import end_line, report_line, start_line, timeout_line

T0 = pd.Timestamp("2026-11-27T04:00:00Z")
CHAIN = ("fetch-image", "grayscale", "flip", "rotate", "resize")
MODELS = ("alexnet", "resnet", "mobilenet")


def _rid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def report_events(
    n: int,
    function: str = "swlab-grayscale",
    cold_every: int = 100,
    seed: int = 0,
    with_start_end: bool = False,
    interval_ms: int = 10,
) -> pd.DataFrame:
    """``n`` invocations as log events (REPORT only, or START/END/REPORT), one stream per cold start.

    Built in chunks of ``CHUNK`` invocations, each turned into a frame (pandas' Arrow-backed strings)
    before the next: the Python strings of a million lines never exist all at once, so building the
    input does not dominate the parsing benchmark's peak memory (it did: ~850 MB for 1M lines).
    """
    rng = np.random.default_rng(seed)
    dur = rng.lognormal(3.0, 0.5, n)
    init = rng.lognormal(5.5, 0.3, n)
    t_ms = int(T0.timestamp() * 1000) + np.arange(n, dtype=np.int64) * interval_ms
    frames = [
        _report_chunk(range(lo, min(n, lo + CHUNK)), function, cold_every, seed, with_start_end, dur, init, t_ms)
        for lo in range(0, n, CHUNK)
    ]
    if not frames:
        return pd.DataFrame({"function": [], "log_stream": [], "timestamp": [], "message": []})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


CHUNK = 50_000


def _report_chunk(
    rows: range,
    function: str,
    cold_every: int,
    seed: int,
    with_start_end: bool,
    dur: np.ndarray,
    init: np.ndarray,
    t_ms: np.ndarray,
) -> pd.DataFrame:
    msgs, times, streams = [], [], []
    for i in rows:
        rid = f"{i:08x}-{seed & 0xFFFF:04x}-4bbb-8ccc-{i:012x}"
        cold = i % cold_every == 0
        stream = f"2026/11/27/[$LATEST]{i // cold_every:032x}"
        rep = report_line(rid, dur[i], int(np.ceil(dur[i])), 128, 45 + i % 7, init[i] if cold else None)
        lines = [start_line(rid), end_line(rid), rep] if with_start_end else [rep]
        offsets = [-int(dur[i]) - 1, 0, 0] if with_start_end else [0]
        for m, off in zip(lines, offsets):
            msgs.append(m)
            times.append(t_ms[i] + off)
            streams.append(stream)
    return pd.DataFrame(
        {
            "function": _strings([function] * len(msgs)),
            "log_stream": _strings(streams),
            "timestamp": np.asarray(times, dtype=np.int64),
            "message": _strings(msgs),
        }
    )


def _strings(values: list[str]) -> pd.Series:
    """A ``str`` column (Arrow ``large_string``) whose text and offsets are anonymous memory maps of exactly
    their size, outside the heap and Arrow's pool.

    Through Arrow's builder the pool kept about 100 MB per million lines once the chunks were done (grown
    buffers freed into mimalloc), and buffers on the heap left it fragmented by the chunks' transient
    Python strings: the benchmark's peak counted both as if parsing had used them.
    """
    raw = [v.encode() for v in values]
    offsets_map = mmap.mmap(-1, 8 * (len(raw) + 1))
    offsets = np.frombuffer(offsets_map, np.int64)
    offsets[0] = 0
    np.cumsum(np.fromiter(map(len, raw), np.int64, len(raw)), out=offsets[1:])
    text_map = mmap.mmap(-1, max(int(offsets[-1]), 1))
    for r in raw:
        text_map.write(r)
    del offsets  # a view of the map: pyarrow holds the map itself
    arr = pa.LargeStringArray.from_buffers(len(raw), pa.py_buffer(offsets_map), pa.py_buffer(text_map))
    return pd.Series(pd.array(arr, dtype="str"), copy=False)


def _invocation_lines(
    fn: str, rid: str, start_ms: int, dur: float, mem: int, init: float | None, timeout_s: float | None = None
) -> list[tuple[str, int, str]]:
    end = start_ms + int(np.ceil(dur))
    lines = [(fn, start_ms, start_line(rid))]
    status = None
    if timeout_s is not None:
        lines.append((fn, end, timeout_line(rid, timeout_s, pd.Timestamp(end, unit="ms", tz="UTC"))))
        status = "timeout"
    lines += [
        (fn, end, end_line(rid)),
        (fn, end, report_line(rid, dur, int(np.ceil(dur)), mem, mem // 3, init, status)),
    ]
    return lines


def synthetic_run(n_ingest: int = 30, n_classify: int = 10, stack: str = "swlab", seed: int = 1) -> RunData:
    """A small two-workflow run: ingest (one Lambda) and classify (a chain, a Parallel of three models,
    an aggregator) with cold starts at the beginning, one timeout, JMeter samples and executions."""
    rng = np.random.default_rng(seed)
    lines: list[tuple[str, int, str]] = []
    t0 = int(T0.timestamp() * 1000)
    for i in range(n_ingest):
        init = float(rng.uniform(200, 400)) if i == 0 else None
        lines += _invocation_lines(
            f"{stack}-ingest",
            _rid(rng),
            t0 + i * 1000,
            float(rng.lognormal(5, 0.2)),
            256,
            init,
            3.0 if i == n_ingest - 1 else None,
        )
    ex_rows, state_rows, jtl = [], [], []
    for k in range(n_classify):
        start = t0 + 500 + k * 3000
        arn = f"arn:aws:states:us-east-1:123456789012:execution:{stack}-classify:run-{k}"
        t = start + 15
        state_rows.append(_state(arn, "ReadMetadata", "Task", t, t + 20, "dynamodb:getItem"))
        t += 25
        for name in CHAIN + ("parallel",) + ("aggregator",):
            if name == "parallel":
                t_end = t
                for m in MODELS:
                    t_end = max(t_end, _lambda_state(rng, lines, state_rows, arn, stack, m, t + 5, k == 0, 1024))
                state_rows.append(_state(arn, "Classify", "Parallel", t, t_end + 5, None))
                t = t_end + 10
            else:
                t = _lambda_state(rng, lines, state_rows, arn, stack, name, t, k == 0, 512) + 10
        ex_rows.append(
            {
                "execution_arn": arn,
                "state_machine": f"{stack}-classify",
                "status": "SUCCEEDED",
                "start_date": pd.Timestamp(start, unit="ms", tz="UTC"),
                "stop_date": pd.Timestamp(t, unit="ms", tz="UTC"),
                "error": None,
                "source": "synthetic",
            }
        )
        jtl.append(("classify", start - 30, t - start + 60, True, "200"))
    for i in range(n_ingest):
        ok = i != n_ingest - 1
        jtl.append(
            ("ingest", t0 + i * 1000 - 20, int(rng.lognormal(5.3, 0.2)) if ok else 3050, ok, "200" if ok else "502")
        )
    return _assemble(stack, lines, ex_rows, state_rows, jtl)


def _state(arn, name, typ, t_in, t_out, resource):
    return {
        "execution_arn": arn,
        "state": name,
        "state_type": typ,
        "entered": pd.Timestamp(t_in, unit="ms", tz="UTC"),
        "exited": pd.Timestamp(t_out, unit="ms", tz="UTC"),
        "status": "succeeded",
        "resource": resource,
        "error": None,
        "failed_attempts": 0,
        "duration_ms": float(t_out - t_in),
    }


def _lambda_state(rng, lines, state_rows, arn, stack, name, t_in, cold, mem) -> int:
    fn = f"{stack}-{name}"
    dur = float(rng.lognormal(6.0 if name in MODELS else 4.5, 0.3))
    init = float(rng.uniform(1500, 3000) if name in MODELS else rng.uniform(150, 300)) if cold else None
    begin = t_in + 8 + (int(init) if init else 0)
    lines += _invocation_lines(fn, _rid(rng), begin, dur, mem, init)
    t_out = begin + int(np.ceil(dur)) + 6
    label = "".join(p.capitalize() for p in name.split("-"))
    state_rows.append(_state(arn, label, "Task", t_in, t_out, fn))
    return t_out


def _assemble(stack, lines, ex_rows, state_rows, jtl) -> RunData:
    events = pd.DataFrame(lines, columns=["function", "timestamp", "message"])
    events["log_group"] = "/aws/lambda/" + events["function"]
    events["log_stream"] = "2026/11/27/[$LATEST]" + events["function"].map(lambda f: f"{abs(hash(f)) % 16**32:032x}")
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    fns = sorted(events["function"].unique())
    functions = pd.DataFrame(
        {
            "function": fns,
            "memory_mb": [1024 if f.split("-", 1)[1] in MODELS else 512 for f in fns],
            "architecture": "x86_64",
            "timeout_s": 30,
            "package_type": "Zip",
            "log_group": ["/aws/lambda/" + f for f in fns],
            "log_format": "Text",
        }
    )
    ex = pd.DataFrame(ex_rows)
    ex["duration_ms"] = (ex["stop_date"] - ex["start_date"]).dt.total_seconds() * 1000
    states = pd.DataFrame(state_rows).assign(state_machine=f"{stack}-classify")
    j = pd.DataFrame(jtl, columns=["label", "ts", "elapsed", "success", "responseCode"])
    j["timeStamp"] = pd.to_datetime(j.pop("ts"), unit="ms", utc=True)
    tables = {
        "functions": functions,
        "log_events": events,
        "invocations": parse_log_events(events),
        "metrics": pd.DataFrame(columns=["function", "metric", "stat", "timestamp", "value"]),
        "executions": ex,
        "states": states,
        "jtl": j.sort_values("timeStamp").reset_index(drop=True),
    }
    manifest = {"target": "synthetic", "stack": stack, "note": "synthetic data, not a measurement"}
    return RunData(manifest=manifest, tables={k: tidy_strings(v) for k, v in tables.items()})
