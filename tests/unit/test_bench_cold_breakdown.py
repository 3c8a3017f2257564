"""The cold Workflow 2 breakdown of scripts/bench-workflows: critical path, init / invoke / the rest."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from swlab.bench.cold_breakdown import critical_path, summary

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2026-11-29T12:00:00", tz="UTC")
DEFINITION = {
    "States": {
        "GetMetadata": {"Type": "Task"},
        "FetchImage": {"Type": "Task"},
        "Classify": {"Type": "Parallel"},
        "Update": {"Type": "Task"},
    }
}


class History:
    def __init__(self) -> None:
        self.events: list[dict] = []

    def add(self, kind: str, at_ms: float, previous: int = 0, **details) -> int:
        eid = len(self.events) + 1
        self.events.append(
            {
                "id": eid,
                "previous_id": previous or eid - 1,
                "type": kind,
                "timestamp": T0 + pd.Timedelta(milliseconds=at_ms),
                "details": details,
            }
        )
        return eid

    def task(self, state: str, start: float, end: float, function: str | None, previous: int = 0) -> int:
        entered = self.add("TaskStateEntered", start, previous, name=state)
        if function:
            params = json.dumps({"FunctionName": f"arn:aws:lambda:us-east-1:1:function:{function}"})
            self.add("TaskScheduled", start, entered, resource="invoke", resourceType="lambda", parameters=params)
        else:
            self.add("TaskScheduled", start, entered, resource="getItem", resourceType="dynamodb")
        return self.add("TaskStateExited", end, name=state)


def test_critical_path_splits_each_task_into_init_invoke_and_the_rest():
    h = History()
    h.task("GetMetadata", 0, 20, None)
    h.task("FetchImage", 25, 1525, "fetch")  # 1,000 init + 300 invoke + 200 else
    par = h.add("ParallelStateEntered", 1530, name="Classify")
    h.task("AlexNet", 1531, 4531, "alexnet", previous=par)  # the slowest branch
    h.task("ResNet", 1531, 3531, "resnet", previous=par)
    h.add("ParallelStateExited", 4540, name="Classify")
    h.task("Update", 4550, 6050, "update")
    colds = {"fetch": (1000.0, 300.0), "alexnet": (2500.0, 400.0), "resnet": (1500.0, 400.0), "update": (1200.0, 200.0)}

    steps = critical_path(h.events, DEFINITION, colds)

    assert [(s.inside, s.state, s.function) for s in steps] == [
        (None, "GetMetadata", None),
        (None, "FetchImage", "fetch"),
        (None, "Classify", None),
        ("Classify", "AlexNet", "alexnet"),
        (None, "Update", "update"),
    ]
    parts = summary(steps, execution_ms=6060.0)
    assert parts["init_ms"] == 1000 + 2500 + 1200
    assert parts["invoke_ms"] == 300 + 400 + 200
    assert parts["other_ms"] == 6060 - 4700 - 900
    assert parts["cold_starts"] == 3
    assert "Classify/AlexNet 3000 (init 2500 + invoke 400)" in parts["states"]
    assert parts["states"].startswith("GetMetadata 20; FetchImage 1500 (init 1000 + invoke 300)")


def test_a_warm_function_counts_no_cold_start_and_an_empty_history_no_path():
    h = History()
    h.task("FetchImage", 0, 400, "fetch")
    steps = critical_path(h.events, DEFINITION, {})
    assert summary(steps, 400.0)["cold_starts"] == 0
    assert summary(steps, 400.0)["other_ms"] == 400.0
    assert critical_path([], DEFINITION, {}) == []
