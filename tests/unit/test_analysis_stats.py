"""Percentile CIs, cold/warm tables, throughput, errors, critical path and orchestration overhead."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swlab.analysis import stats, workflow
from swlab.analysis.histories import executions_from_history, history_to_states, normalise_history_event
from swlab.bench.synthetic import synthetic_run
from swlab.loadtest.jtl import parse_jtl

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def test_median_ci_ranks_match_binomial_table():
    # n=10, q=0.5, 95%: the classic distribution-free interval is (x_(2), x_(9)), coverage 97.9%
    assert stats.quantile_ci_ranks(10, 0.5, 0.95) == (2, 9)
    # n=100: (x_(40), x_(61)) per the binomial quantiles 39 and 60
    assert stats.quantile_ci_ranks(100, 0.5, 0.95) == (40, 61)


def test_small_samples_leave_tail_bounds_undefined():
    lo, hi = stats.quantile_ci_ranks(30, 0.99)
    assert lo is not None and hi is None
    est, low, high = stats.percentile_ci(range(1, 31), 0.99)
    assert math.isnan(high) and low <= est


def test_ci_covers_true_quantile_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        x = rng.exponential(1.0, 200)
        _, lo, hi = stats.percentile_ci(x, 0.9)
        hits += lo <= -math.log(0.1) <= hi
    assert 0.92 <= hits / 400 <= 0.995


def test_large_n_agrees_with_the_normal_approximation():
    lo, hi = stats.quantile_ci_ranks(200_000, 0.5)
    assert abs(lo - (100_000 - 1.96 * math.sqrt(50_000))) < 3 and abs(hi - (100_000 + 1.96 * math.sqrt(50_000))) < 4


def test_summarize_and_percentile_table():
    s = stats.summarize([1, 2, 3, 4, 100])
    assert s["n"] == 5 and s["p50"] == 3 and s["max"] == 100 and s["mean"] == 22
    t = stats.percentile_table(range(1, 101))
    assert list(t["percentile"]) == ["p50", "p90", "p95", "p99", "max"]
    assert t.set_index("percentile").loc["p50", "ci_low"] == 40


def test_cold_warm_table_from_invocations():
    inv = pd.DataFrame(
        {
            "function": ["a"] * 4 + ["b"] * 2,
            "cold": [True, False, False, False, True, True],
            "init_duration_ms": [300.0, np.nan, np.nan, np.nan, 100.0, 200.0],
            "duration_ms": [50.0, 10.0, 20.0, 30.0, 5.0, 7.0],
        }
    )
    t = stats.cold_warm_table(inv)
    assert t.loc["a", "cold"] == 1 and t.loc["a", "cold_pct"] == 25
    assert t.loc["a", "duration_warm_p50_ms"] == 20 and t.loc["a", "duration_cold_p50_ms"] == 50
    assert t.loc["b", "init_p50_ms"] == 150 and math.isnan(t.loc["b", "duration_warm_p50_ms"])


def test_cold_start_cost_is_init_plus_the_first_invocations_extra_duration():
    inv = pd.DataFrame(
        {
            "function": ["a"] * 4 + ["b"] * 2 + ["c"],
            "cold": [True, False, False, False, True, True, False],
            "init_duration_ms": [300.0, np.nan, np.nan, np.nan, 100.0, 200.0, np.nan],
            "duration_ms": [50.0, 10.0, 20.0, 30.0, 5.0, 7.0, 3.0],
        }
    )
    t = stats.cold_start_cost(inv)
    assert list(t.index) == ["a", "b"]  # c was never cold
    assert t.loc["a", "init_ms"] == 300 and t.loc["a", "extra_duration_ms"] == 30 and t.loc["a", "cold_cost_ms"] == 330
    assert (t.loc["a", "cold"], t.loc["a", "warm"]) == (1, 3)
    # no warm invocation to compare with: the extra part is unknown, the cost is Init alone
    assert math.isnan(t.loc["b", "extra_duration_ms"]) and t.loc["b", "cold_cost_ms"] == 150
    faster_cold = pd.DataFrame(
        {"function": ["d", "d"], "cold": [True, False], "init_duration_ms": [80.0, np.nan], "duration_ms": [5.0, 9.0]}
    )
    assert stats.cold_start_cost(faster_cold).loc["d", "extra_duration_ms"] == 0  # never below zero


def test_throughput_counts_per_interval_with_empty_intervals():
    t = pd.to_datetime(["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:25Z"])
    tp = stats.throughput(t, ends=t + pd.Timedelta(seconds=1), errors=t[:1], interval="10s")
    assert list(tp["started"]) == [2, 0, 1] and list(tp["completed"]) == [2, 0, 1]
    assert list(tp["errors"]) == [1, 0, 0] and tp["started_per_s"].iloc[0] == 0.2 and tp["throttles"].sum() == 0


def test_errors_table_includes_throttle_metric():
    inv = pd.DataFrame(
        {
            "function": ["f", "f", "f"],
            "status": ["success", "timeout", "error"],
            "error_type": [None, "Sandbox.Timedout", "KeyError"],
        }
    )
    metrics = pd.DataFrame({"function": ["f"], "metric": ["Throttles"], "stat": ["Sum"], "value": [4.0]})
    t = stats.errors_table(inv, metrics)
    assert dict(zip(t["error_type"], t["count"])) == {"Throttled": 4, "Sandbox.Timedout": 1, "KeyError": 1}


def test_client_and_server_latency_tables():
    jtl = pd.DataFrame(
        {
            "timeStamp": pd.to_datetime([0, 1000], unit="ms", utc=True),
            "elapsed": [10, 20],
            "success": [True, False],
            "label": ["ingest", "classify"],
            "responseCode": ["200", "500"],
        }
    )
    assert stats.client_latency(jtl, "classify")["latency_ms"].tolist() == [20.0]
    ex = pd.DataFrame(
        {
            "execution_arn": ["a", "b"],
            "state_machine": ["s", "s"],
            "status": ["SUCCEEDED", "RUNNING"],
            "start_date": pd.to_datetime([0, 0], unit="ms", utc=True),
            "stop_date": [pd.Timestamp(1500, unit="ms", tz="UTC"), pd.NaT],
            "duration_ms": [1500.0, np.nan],
        }
    )
    assert stats.server_latency(ex)["latency_ms"].tolist() == [1500.0]


def fixture_execution():
    doc = json.loads((FIXTURES / "sfn_history_standard.json").read_text())
    ev = [normalise_history_event(e) for e in doc["events"]]
    states = history_to_states(ev, doc["executionArn"]).assign(state_machine="swlab-classify")
    ex = pd.DataFrame([executions_from_history(ev, doc["executionArn"], "swlab-classify")])
    ex["duration_ms"] = (ex["stop_date"] - ex["start_date"]).dt.total_seconds() * 1000
    return states, ex


def test_critical_path_takes_the_slowest_parallel_branch():
    states, _ = fixture_execution()
    path = workflow.critical_path(states)
    assert list(path["state"]) == ["ReadMetadata", "FetchImage", "Grayscale", "ResNet", "Aggregator"]


def test_orchestration_overhead_is_e2e_minus_lambda_on_path():
    states, ex = fixture_execution()
    # one REPORT per Lambda task, ending 2 ms before the state exits, 20 ms shorter than the state
    tasks = states[states["resource"].fillna("").str.startswith("swlab-")]
    inv = pd.DataFrame(
        {
            "function": tasks["resource"],
            "request_id": [f"r{i}" for i in range(len(tasks))],
            "end_time": tasks["exited"] - pd.Timedelta(milliseconds=2),
            "duration_ms": tasks["duration_ms"] - 20,
            "init_duration_ms": np.nan,
            "cold": False,
        }
    )
    inv["start_time"] = inv["end_time"] - pd.to_timedelta(inv["duration_ms"], unit="ms")
    joined = workflow.attach_lambda_durations(states, inv)
    assert joined.set_index("state").loc["ResNet", "lambda_duration_ms"] == 878
    over = workflow.orchestration_overhead(joined, ex).iloc[0]
    lam = (300 - 20) + (120 - 20) + (898 - 20) + (50 - 20)
    assert over["e2e_ms"] == 1418 and over["lambda_ms"] == lam and over["hops"] == 4
    assert over["overhead_ms"] == 1418 - lam


def test_median_critical_path_on_synthetic_run_is_ordered_and_complete():
    run = synthetic_run(n_ingest=5, n_classify=6)
    joined = workflow.attach_lambda_durations(run["states"], run["invocations"])
    mcp = workflow.median_critical_path(joined, run["executions"])
    assert mcp["offset_ms"].is_monotonic_increasing
    assert mcp.set_index("state").loc["Resize", "on_path"] == 1.0
    assert mcp.loc[mcp["state"].isin(["Alexnet", "Resnet", "Mobilenet"]), "on_path"].sum() == pytest.approx(1.0)
    assert joined["lambda_duration_ms"].notna().sum() == 6 * 9  # every Lambda task matched once


def test_throughput_of_client_samples_splits_throttles_from_errors():

    client = stats.client_latency(parse_jtl(FIXTURES / "jmeter_results.jtl"))
    assert client["throttled"].tolist() == [False, False, False, True, False, False, False]
    tp = stats.throughput_of(client, interval="10s")
    assert tp["started"].sum() == 7 and tp["throttles"].sum() == 1 and tp["errors"].sum() == 1
    assert tp["completed"].sum() == 7  # the 30 s timeout completes in a later interval
    assert tp["completed"].iloc[-1] == 1


def test_matching_under_concurrency_and_retries():
    t = pd.Timestamp("2026-11-27T04:00:00Z")
    ms = lambda v: t + pd.Timedelta(milliseconds=v)  # noqa: E731
    states = pd.DataFrame(
        {
            "execution_arn": ["e1", "e2", "e3"],
            "state": ["Step"] * 3,
            "state_type": ["Task"] * 3,
            "entered": [ms(0), ms(100), ms(2000)],
            "exited": [ms(1000), ms(1100), ms(3000)],
            "status": ["succeeded"] * 3,
            "resource": ["swlab-f"] * 3,
            "error": [None, None, "X"],
            "failed_attempts": [0, 0, 1],
            "duration_ms": [1000.0, 1000.0, 1000.0],
        }
    )
    inv = pd.DataFrame(
        {
            "function": ["swlab-f"] * 4,
            "request_id": ["i1", "i2", "r1", "r2"],
            "start_time": [ms(10), ms(110), ms(2010), ms(2500)],
            "end_time": [ms(980), ms(700), ms(2400), ms(2900)],
            "duration_ms": [970.0, 590.0, 390.0, 400.0],
            "init_duration_ms": [np.nan] * 4,
            "cold": [False] * 4,
        }
    )
    # a later REPORT (i1 at 980 ms) ends before e2's exit too: matching by exit time alone would give e2 i1
    out = workflow.attach_lambda_durations(states, inv).set_index("execution_arn")
    assert out.loc["e1", "lambda_request_id"] == "i1" and out.loc["e2", "lambda_request_id"] == "i2"
    assert out.loc["e3", "lambda_invocations"] == 2 and out.loc["e3", "lambda_duration_ms"] == 790.0


def _peak_bytes(f) -> int:
    """Peak of what numpy and Python allocate while ``f`` runs (tracemalloc; Arrow's pool is not counted)."""
    import tracemalloc

    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_cold_warm_table_and_summarize_hold_about_one_copy_of_the_durations():
    n = 200_000
    rng = np.random.default_rng(0)
    duration = rng.lognormal(3, 0.5, n)
    inv = pd.DataFrame(
        {
            "function": pd.array(np.where(np.arange(n) % 3 == 0, "a", "b"), dtype="str"),
            "cold": np.arange(n) % 100 == 0,
            "init_duration_ms": np.where(np.arange(n) % 100 == 0, 250.0, np.nan),
            "duration_ms": duration,
        }
    )
    # the warm durations of a function copied once (quantile reorders them), a few masks of a byte a row;
    # factorize's int64 code per row (cold_warm_table: 18 bytes a row), or np.quantile's copy of the sorted
    # copy (summarize: 16 to 24), came on top
    assert _peak_bytes(lambda: stats.cold_warm_table(inv)) < 12 * n
    assert _peak_bytes(lambda: stats.summarize(inv["duration_ms"])) < 12 * n
    s = stats.summarize(inv["duration_ms"])
    assert s["n"] == n and s["max"] == duration.max() and s["p50"] == np.quantile(duration, 0.5)
