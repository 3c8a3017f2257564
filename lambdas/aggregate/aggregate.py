"""Aggregate: one consensus label from the models that answered, and the record of those that did not.

Consensus = the label with the highest probability summed over the contributing
models' top-5 lists (a label missing from a list counts 0), reported as the
mean over contributing models; ties go to more top-1 votes, then the name.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from swl_errors import InvalidInput, NoModelSucceeded, error_message
from swl_event import image_id_of


def consensus(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    summed: dict[str, float] = defaultdict(float)
    votes: dict[str, int] = defaultdict(int)
    for record in records:
        for entry in record["top5"]:
            summed[entry["label"]] += float(entry["probability"])
        votes[record["top5"][0]["label"]] += 1
    label = min(summed, key=lambda name: (-summed[name], -votes[name], name))
    return {
        "label": label,
        "score": round(summed[label] / len(records), 6),
        "votes": votes.get(label, 0),
        "method": "summed_probability",
    }


def _weights(records: Sequence[Mapping[str, Any]]) -> str:
    kinds = {record.get("weights", "untrained") for record in records}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def aggregate(event: Mapping[str, Any]) -> dict[str, Any]:
    """Event: ``{"image_id", "models": [model result or {"model", "ok": false, "error", "cause"}, ...]}``."""
    image_id = image_id_of(event)
    records = event.get("models")
    if not isinstance(records, list) or not records:
        raise InvalidInput("models must be a non-empty list of model results")
    ok = [r for r in records if isinstance(r, Mapping) and r.get("ok") and r.get("top5")]
    failed = [
        {
            "model": r.get("model", "unknown"),
            "error": r.get("error", "NoResult"),
            "message": error_message(r.get("cause", "")),
        }
        for r in records
        if r not in ok
    ]
    if not ok:
        detail = "; ".join(f"{f['model']}: {f['error']}" for f in failed)
        raise NoModelSucceeded(f"all {len(records)} models failed ({detail})")
    return {
        "image_id": image_id,
        "consensus": consensus(ok),
        "labels": {r["model"]: r["top5"] for r in ok},
        "inference_ms": {r["model"]: r.get("inference_ms") for r in ok},
        "contributing": sorted(r["model"] for r in ok),
        "failed": failed,
        "weights": _weights(ok),
    }
