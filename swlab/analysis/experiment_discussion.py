"""This run's figures beside the published anchors (the discussion page, ``e9_discussion``). Pure."""

from __future__ import annotations

import math

import pandas as pd

from swlab.analysis import stats
from swlab.analysis.experiment_cold import cold_start_table
from swlab.analysis.experiment_common import measured_since
from swlab.analysis.experiment_cost import point_overhead
from swlab.analysis.points import PointData

ANCHORS = (
    # (what, published, source)
    ("Workflow 1 mean latency", "1.2 s", "the original lab, on AWS"),
    ("Workflow 2 mean latency", "14.6 s", "the original lab, on AWS"),
    ("image recognition cold", "9.7 s", "SeBS 411.image-recognition, 1 GB"),
    ("image recognition warm", "0.93 s", "SeBS 411.image-recognition, 1 GB"),
    ("Step Functions Standard, per state transition", "100–160 ms", "published measurements"),
)


def discussion_table(points: list[PointData]) -> pd.DataFrame:
    """The published anchors beside this run's closest figures (``this_run`` empty when not measured)."""
    ok = [p for p in points if p.ok]
    by = {a: [p for p in ok if p.record.get("analysis") == a] for a in ("cold_starts", "workflow_type", "architecture")}
    means: dict[str, float] = {}
    for p in by["architecture"] or ok:
        jtl = p.table("jtl")
        if len(jtl):
            for label, g in stats.client_latency(jtl).groupby("label"):
                means.setdefault(str(label), float(g["latency_ms"].mean()))
    cold = cold_start_table(by["cold_starts"]) if by["cold_starts"] else pd.DataFrame()
    overhead = math.nan
    for p in by["workflow_type"]:
        if str(p.config.get("workflow_type")) == "STANDARD":
            over = point_overhead(p, measured_since(p.table("executions"), "start_date", p.record.get("measured_from")))
            overhead = float(over["overhead_per_hop_ms"].median()) if len(over) else math.nan
    resnet = cold.loc["resnet"] if "resnet" in cold.index else None
    values = [
        f"{means['ingest'] / 1000:.3f} s" if "ingest" in means else "",
        f"{means['classify'] / 1000:.3f} s" if "classify" in means else "",
        f"{resnet['cold_total_ms'] / 1000:.2f} s (ResNet-18: Init + first invocation)" if resnet is not None else "",
        f"{resnet['warm_duration_ms'] / 1000:.3f} s (ResNet-18 warm)" if resnet is not None else "",
        f"{overhead:.1f} ms (local Step Functions)" if not math.isnan(overhead) else "",
    ]
    return pd.DataFrame(
        [{"figure": w, "published": pub, "source": src, "this_run": v} for (w, pub, src), v in zip(ANCHORS, values)]
    ).set_index("figure")
