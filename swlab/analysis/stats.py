"""Client-side statistics: percentiles with confidence intervals, cold/warm tables, throughput,
critical paths. Pure functions on DataFrames (moto computes no percentiles, so neither target is
asked to).

Percentile CIs are distribution-free: for the q-quantile of n observations, the
number of observations below it is Binomial(n, q), so the interval between the
order statistics x_(l) and x_(u) covers it with probability
P(l <= B < u). We choose l and u as the binomial α/2 and 1-α/2 quantiles
(exact binomial, at any n). When the sample is too
small for a bound (e.g. p99 of 30 values), that bound is NaN, never a guess.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

QUANTILES = (0.50, 0.90, 0.95, 0.99)


def _binom_cdf_window(n: int, q: float) -> tuple[int, np.ndarray]:
    """(k0, P(B <= k) for k = k0..k1), B ~ Binomial(n, q), over mean ± 12 sd (the mass outside is
    below 1e-30), computed in log space without scipy: exact at any n for the ranks we need."""
    sd = math.sqrt(n * q * (1 - q))
    k0, k1 = max(0, int(n * q - 12 * sd) - 5), min(n, int(n * q + 12 * sd) + 5)
    k = np.arange(k0, k1 + 1)
    lgam = np.vectorize(math.lgamma, otypes=[float])
    logpmf = lgam(n + 1) - lgam(k + 1) - lgam(n - k + 1) + k * math.log(q) + (n - k) * math.log1p(-q)
    pmf = np.exp(logpmf - logpmf.max())
    return k0, np.cumsum(pmf) / pmf.sum()


def quantile_ci_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) with P(x_(l) <= Q_q <= x_(u)) >= confidence; None where no rank suffices."""
    if n <= 0:
        return None, None
    alpha = 1 - confidence
    k0, cdf = _binom_cdf_window(n, q)
    lo = k0 + int(np.searchsorted(cdf, alpha / 2, side="right"))  # P(B < lo) <= alpha/2
    hi = k0 + int(np.searchsorted(cdf, 1 - alpha / 2, side="left")) + 1  # P(B <= hi - 1) >= 1 - alpha/2
    return (lo if lo >= 1 else None), (hi if hi <= n else None)


def _sorted_values(values: Iterable[float]) -> np.ndarray:
    x = pd.Series(values, dtype=float).to_numpy()  # numpy float64, missing values NaN: a view, no copy
    x = x[~np.isnan(x)]  # the one copy (of a million durations, 8 MB), sorted in place
    x.sort()
    return x


def _ci_sorted(x: np.ndarray, qs: list[float], confidence: float) -> list[tuple[float, float, float]]:
    """(estimate, ci_low, ci_high) of each q-quantile of the sorted ``x``, which is reordered on the way: the
    bounds are read first, then the estimates partition ``x`` in place (a copy of a million values spared)."""
    if len(x) == 0:
        return [(math.nan, math.nan, math.nan) for _ in qs]
    bounds = []
    for q in qs:
        lo, hi = quantile_ci_ranks(len(x), q, confidence)
        bounds.append((math.nan if lo is None else float(x[lo - 1]), math.nan if hi is None else float(x[hi - 1])))
    estimates = np.quantile(x, qs, method="linear", overwrite_input=True)
    return [(float(est), lo, hi) for est, (lo, hi) in zip(estimates, bounds)]


def percentile_ci(values: Iterable[float], q: float, confidence: float = 0.95) -> tuple[float, float, float]:
    """(estimate, ci_low, ci_high) of the q-quantile; the estimate is linear-interpolated."""
    return _ci_sorted(_sorted_values(values), [q], confidence)[0]


def summarize(
    values: Iterable[float], quantiles: Iterable[float] = QUANTILES, confidence: float = 0.95
) -> dict[str, float]:
    """n, mean, pXX with pXX_lo/pXX_hi CI bounds for each quantile, and max."""
    x = _sorted_values(values)
    out: dict[str, float] = {"n": int(len(x)), "mean": float(x.mean()) if len(x) else math.nan}
    top = float(x[-1]) if len(x) else math.nan
    qs = list(quantiles)
    for q, (est, lo, hi) in zip(qs, _ci_sorted(x, qs, confidence)):  # x is no longer sorted after this
        name = f"p{round(q * 100):d}"
        out.update({name: est, f"{name}_lo": lo, f"{name}_hi": hi})
    out["max"] = top
    return out


def summarize_by(df: pd.DataFrame, value: str, by: str | list[str], **kwargs) -> pd.DataFrame:
    """:func:`summarize` of ``df[value]`` per group → one row per group."""
    rows = {key: summarize(g[value], **kwargs) for key, g in df.groupby(by, sort=True)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = [by] if isinstance(by, str) else by
    return out


def percentile_table(
    values: Iterable[float], quantiles: Iterable[float] = QUANTILES, confidence: float = 0.95
) -> pd.DataFrame:
    """Long form: one row per percentile (percentile, value, ci_low, ci_high, n); the max last."""
    x = pd.Series(values, dtype=float).dropna()
    rows = [(f"p{round(q * 100):d}", *percentile_ci(x, q, confidence), len(x)) for q in quantiles]
    rows.append(("max", float(x.max()) if len(x) else math.nan, math.nan, math.nan, len(x)))
    return pd.DataFrame(rows, columns=["percentile", "value", "ci_low", "ci_high", "n"])


# ---- cold vs warm ---------------------------------------------------------------------------


def cold_warm_table(invocations: pd.DataFrame, quantiles: Iterable[float] = (0.5, 0.9, 0.99)) -> pd.DataFrame:
    """Per function: invocations, cold count and share, Init Duration and Duration percentiles warm vs cold."""
    rows = []
    # Column-wise per function (a group's frame would copy every column of a million rows, twice), and
    # without a code per row (factorize's int64 codes were the biggest scratch: 8 MB a million rows).
    function = invocations["function"]
    names = sorted(v for v in pd.unique(function) if not pd.isna(v))  # as groupby(sort=True): NaN left out
    is_cold = invocations["cold"].to_numpy(dtype=bool)
    init, duration = (invocations[c].to_numpy(dtype=float) for c in ("init_duration_ms", "duration_ms"))
    rows_of, known = np.empty(len(is_cold), bool), np.empty(len(is_cold), bool)  # masks reused in place
    for fn in names:
        in_fn = (function == fn).to_numpy(dtype=bool)
        cold = in_fn & is_cold
        n, n_cold = int(in_fn.sum()), int(cold.sum())
        row = {"function": fn, "invocations": n, "cold": n_cold, "cold_pct": 100 * n_cold / n}
        for label, values, of_cold in (
            ("init", init, True),
            ("duration_warm", duration, False),
            ("duration_cold", duration, True),
        ):
            if of_cold:
                np.copyto(rows_of, cold)
            else:
                np.greater(in_fn, is_cold, out=rows_of)  # warm: in the function and not cold
            rows_of &= np.logical_not(np.isnan(values, out=known), out=known)
            x = values[rows_of]  # a copy, which quantile may reorder in place
            for q in quantiles:
                row[f"{label}_p{round(q * 100):d}_ms"] = (
                    float(np.quantile(x, q, overwrite_input=True)) if len(x) else math.nan
                )
            del x
        rows.append(row)
    return pd.DataFrame(rows).set_index("function") if rows else pd.DataFrame()


def cold_start_cost(invocations: pd.DataFrame) -> pd.DataFrame:
    """Per function, what a cold start costs, in the two parts AWS reports (medians, ms).

    ``init_ms``: the Init Duration of cold invocations; ``extra_duration_ms``: how much longer a cold
    invocation's Duration is than a warm one's (work the handler does on its first event; NaN
    without warm invocations to compare with, never below zero); ``cold_cost_ms``: their sum,
    the time a request waits for a new environment. ``cold`` and ``warm`` count the samples behind
    each median.
    """
    rows = []
    for fn, g in invocations.groupby("function", sort=True):
        cold, warm = g[g["cold"]], g[~g["cold"]]
        if not len(cold):
            continue
        init = float(cold["init_duration_ms"].median())
        first, usual = float(cold["duration_ms"].median()), float(warm["duration_ms"].median())
        extra = max(first - usual, 0.0) if len(warm) else math.nan
        rows.append(
            {
                "function": fn,
                "cold": len(cold),
                "warm": len(warm),
                "init_ms": init,
                "cold_duration_ms": first,
                "warm_duration_ms": usual if len(warm) else math.nan,
                "extra_duration_ms": extra,
                "cold_cost_ms": init + (0.0 if math.isnan(extra) else extra),
            }
        )
    columns = ["cold", "warm", "init_ms", "cold_duration_ms", "warm_duration_ms", "extra_duration_ms", "cold_cost_ms"]
    return pd.DataFrame(rows, columns=["function", *columns]).set_index("function")


# ---- latency -------------------------------------------------------------------------------


def client_latency(jtl: pd.DataFrame, label: str | None = None) -> pd.DataFrame:
    """JMeter samples → (label, time, latency_ms, success, throttled); ``label`` filters one sampler.

    ``throttled`` marks HTTP 429 (API Gateway usage-plan or Lambda concurrency throttling)."""
    df = jtl if label is None else jtl[jtl["label"] == label]
    codes = df["responseCode"].astype(str) if "responseCode" in df else pd.Series("", index=df.index)
    return pd.DataFrame(
        {
            "label": df["label"].to_numpy(),
            "time": df["timeStamp"].to_numpy(),
            "latency_ms": df["elapsed"].astype(float).to_numpy(),
            "success": df["success"].astype(bool).to_numpy(),
            "throttled": codes.eq("429").to_numpy(),
        }
    )


def server_latency(executions: pd.DataFrame, state_machine: str | None = None) -> pd.DataFrame:
    """Executions → (label, time, latency_ms, success): start→stop of each finished execution."""
    df = executions if state_machine is None else executions[executions["state_machine"] == state_machine]
    df = df[df["stop_date"].notna()]
    return pd.DataFrame(
        {
            "label": df["state_machine"].to_numpy(),
            "time": df["start_date"].to_numpy(),
            "latency_ms": df["duration_ms"].astype(float).to_numpy(),
            "success": (df["status"] == "SUCCEEDED").to_numpy(),
        }
    )


# ---- throughput ----------------------------------------------------------------------------


def throughput(
    starts: pd.Series,
    ends: pd.Series | None = None,
    errors: pd.Series | None = None,
    throttles: pd.Series | None = None,
    interval: str = "10s",
) -> pd.DataFrame:
    """Counts per interval: started, completed, errors, throttles (each a Series of event times).

    Columns are per interval and ``*_per_s`` rates; intervals with no event are 0.
    """
    series = {"started": starts, "completed": ends, "errors": errors, "throttles": throttles}
    counts = {}
    for name, s in series.items():
        s = pd.Series([] if s is None else s)
        s = pd.to_datetime(s, utc=True).dropna()
        counts[name] = s.dt.floor(interval).value_counts()
    df = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
    if len(df):
        full = pd.date_range(df.index.min(), df.index.max(), freq=interval)
        df = df.reindex(full, fill_value=0)
    df.index.name = "interval_start"
    secs = pd.Timedelta(interval).total_seconds()
    for c in list(series):
        df[f"{c}_per_s"] = df[c] / secs
    return df


def throughput_of(latency: pd.DataFrame, interval: str = "10s") -> pd.DataFrame:
    """:func:`throughput` of client- or server-side samples (:func:`client_latency`/:func:`server_latency`):
    started at ``time``, completed at time + latency; failures split into throttles (429) and errors."""
    t = pd.to_datetime(latency["time"], utc=True)
    throttled = latency["throttled"].astype(bool) if "throttled" in latency else pd.Series(False, index=latency.index)
    failed = ~latency["success"].astype(bool)
    return throughput(
        t,
        t + pd.to_timedelta(latency["latency_ms"], unit="ms"),
        errors=t[failed & ~throttled],
        throttles=t[throttled],
        interval=interval,
    )


def errors_table(invocations: pd.DataFrame, metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """Counts per function and error type (timeouts included); throttles from the Throttles metric."""
    bad = invocations[invocations["status"] != "success"]
    rows = bad.groupby(["function", "error_type"], dropna=False).size().rename("count").reset_index()
    if metrics is not None and len(metrics):
        thr = metrics[(metrics["metric"] == "Throttles") & (metrics["stat"] == "Sum")]
        thr = thr.groupby("function")["value"].sum()
        extra = pd.DataFrame({"function": thr.index, "error_type": "Throttled", "count": thr.to_numpy()})
        rows = pd.concat([rows, extra[extra["count"] > 0]], ignore_index=True)
    rows["count"] = rows["count"].astype(int)
    return rows.sort_values(["function", "count"], ascending=[True, False]).reset_index(drop=True)
