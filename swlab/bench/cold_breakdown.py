"""Where a cold Workflow 2 execution spends its time: its history's states against its functions' REPORT lines.

The critical path of one execution is its top-level states in order and, inside a Parallel state,
the branch Task that exited last. Each Lambda Task on it splits into the function's Init Duration,
its first invocation's Duration and the rest (Step Functions' transition and dispatch, the local
cloud's spawn of the environment, the invoke's HTTP round trip). Pure: the caller fetches the history
(:func:`swlab.analysis.collect.fetch_history`) and the cold starts (REPORT lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from swlab.analysis.histories import history_to_states


@dataclass(frozen=True)
class Step:
    """One state on the critical path: its duration and, for a Lambda Task, its function's cold figures."""

    state: str
    ms: float
    function: str | None = None
    init_ms: float = 0.0
    invoke_ms: float = 0.0
    inside: str | None = None  # the Parallel state this branch Task belongs to

    def label(self) -> str:
        name = f"{self.inside}/{self.state}" if self.inside else self.state
        if self.function is None:
            return f"{name} {self.ms:.0f}"
        return f"{name} {self.ms:.0f} (init {self.init_ms:.0f} + invoke {self.invoke_ms:.0f})"


def critical_path(
    events: list[dict], definition: Mapping[str, Any], colds: Mapping[str, tuple[float, float]]
) -> list[Step]:
    """The cold execution's critical path; ``colds`` maps a function name to (Init Duration, first Duration)."""
    states = history_to_states(events, "cold")
    if states.empty:
        return []
    top = set(definition.get("States", {}))
    kinds = {name: spec.get("Type") for name, spec in definition.get("States", {}).items()}
    steps: list[Step] = []
    for _, row in states.sort_values("entered").iterrows():
        if row["state"] not in top or pd.isna(row["duration_ms"]):
            continue
        if kinds.get(row["state"]) == "Parallel":
            inner = states[
                (~states["state"].isin(top))
                & (states["entered"] >= row["entered"])
                & (states["exited"] <= row["exited"])
                & states["resource"].notna()
            ]
            steps.append(Step(row["state"], float(row["duration_ms"])))
            if len(inner):
                last = inner.sort_values("exited").iloc[-1]
                steps.append(_task(last, colds, inside=row["state"]))
            continue
        steps.append(_task(row, colds) if isinstance(row["resource"], str) else Step(row["state"], row["duration_ms"]))
    return steps


def _task(row: pd.Series, colds: Mapping[str, tuple[float, float]], inside: str | None = None) -> Step:
    function = row["resource"] if isinstance(row["resource"], str) and row["resource"] in colds else None
    init_ms, invoke_ms = colds.get(function, (0.0, 0.0)) if function else (0.0, 0.0)
    return Step(row["state"], float(row["duration_ms"]), function, init_ms, invoke_ms, inside)


def summary(steps: list[Step], execution_ms: float) -> dict[str, Any]:
    """``init_ms`` and ``invoke_ms`` summed over the critical path's functions, ``other_ms`` the rest of the
    execution (orchestration and platform), ``cold_starts`` on the path, and ``states`` as one line."""
    init_ms = sum(s.init_ms for s in steps)
    invoke_ms = sum(s.invoke_ms for s in steps)
    return {
        "init_ms": init_ms,
        "invoke_ms": invoke_ms,
        "other_ms": execution_ms - init_ms - invoke_ms,
        "cold_starts": sum(1 for s in steps if s.function and s.init_ms > 0),
        "states": "; ".join(s.label() for s in steps if s.ms >= 1.0 or s.function),
    }
