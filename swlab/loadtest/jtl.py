"""JMeter's results: a CSV JTL as a typed DataFrame, and the figures drawn from it (pure pandas).

What the analysis may import from the load tests: nothing here starts a process.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Per-sample variables written as extra JTL columns (set by the plans' JSR223 elements).
SAMPLE_VARIABLES = ("row_index", "row_value", "sample_id")


_INT_COLUMNS = ("elapsed", "Latency", "Connect", "IdleTime", "bytes", "sentBytes", "grpThreads", "allThreads")
_STR_COLUMNS = (
    "label",
    "responseCode",
    "responseMessage",
    "threadName",
    "dataType",
    "failureMessage",
    "URL",
    *SAMPLE_VARIABLES,
)


def parse_jtl(path: Path) -> pd.DataFrame:
    """A CSV JTL as a typed DataFrame.

    ``timeStamp`` becomes a UTC datetime (sample start), the millisecond and byte
    counts nullable ints, ``success`` bool, text columns strings ("" when empty;
    quoted fields may hold commas, quotes and newlines). ``row_index`` is an int.
    """
    df = pd.read_csv(
        path, dtype=str, keep_default_na=False, na_filter=False, quotechar='"', doublequote=True, engine="c"
    )
    if "timeStamp" not in df.columns:
        raise ValueError(f"{path}: not a CSV JTL with a header line (no timeStamp column)")
    df["timeStamp"] = pd.to_datetime(pd.to_numeric(df["timeStamp"]), unit="ms", utc=True)
    for col in _INT_COLUMNS + ("row_index",):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace({"": None, "null": None})).astype("Int64")
    if "success" in df.columns:
        df["success"] = df["success"].str.lower().map({"true": True, "false": False}).astype(bool)
    for col in _STR_COLUMNS:
        if col in df.columns and col != "row_index":
            df[col] = df[col].astype("string")
    for col in SAMPLE_VARIABLES:  # JMeter writes "null" for a variable that was never set
        if col in df.columns and col != "row_index":
            df[col] = df[col].mask(df[col] == "null", "")
    return df.sort_values("timeStamp", kind="stable").reset_index(drop=True)


def arrival_gaps_s(df: pd.DataFrame, skip_first_s: float = 5.0) -> pd.Series:
    """Seconds between consecutive sample starts, after the first ``skip_first_s`` seconds of the run."""
    starts = df["timeStamp"].sort_values()
    if starts.empty:
        return pd.Series(dtype=float)
    starts = starts[starts >= starts.iloc[0] + pd.Timedelta(seconds=skip_first_s)]
    return starts.diff().dropna().dt.total_seconds().reset_index(drop=True)


def returned_ids(samples: pd.DataFrame) -> list[str]:
    """The ids the successful samples returned (``sample_id``, e.g. Workflow 1's ``image_id``), in order.

    What Workflow 2's load test classifies: only the images Workflow 1 accepted.
    """
    return samples.loc[samples["success"] & (samples["sample_id"] != ""), "sample_id"].tolist()


def summarize_jtl(df: pd.DataFrame, samples_planned: int, skip_first_s: float = 5.0) -> dict[str, float]:
    """Samples, error %, latency percentiles (ms, all samples) and the largest arrival gap."""
    gaps = arrival_gaps_s(df, skip_first_s)
    elapsed = df["elapsed"].astype(float)
    quantiles = elapsed.quantile([0.5, 0.95, 0.99]) if len(df) else pd.Series([float("nan")] * 3)
    return {
        "samples_planned": samples_planned,
        "samples": int(len(df)),
        "max_arrival_gap_s": round(float(gaps.max()), 3) if len(gaps) else float("nan"),
        "error_pct": round(100.0 * float((~df["success"]).sum()) / len(df), 2) if len(df) else float("nan"),
        "p50_ms": round(float(quantiles.iloc[0]), 1),
        "p95_ms": round(float(quantiles.iloc[1]), 1),
        "p99_ms": round(float(quantiles.iloc[2]), 1),
    }
