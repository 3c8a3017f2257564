"""A load test's live progress: what JMeter's summariser says (answered, failed), what the schedule
says (sent, time left), shown in a terminal or a notebook."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Progress:
    """Live state of a run: answers and failures from JMeter's summariser, requests sent from the schedule."""

    label: str
    elapsed_s: float
    planned_s: float
    samples: int  # answered or failed (the summariser counts a sample when it ends)
    errors: int
    done: bool = False
    sent: int | None = None  # arrivals due so far by the schedule (open model: each one is sent when due)
    planned_samples: int = 0

    @property
    def error_pct(self) -> float:
        return 100.0 * self.errors / self.samples if self.samples else 0.0

    def line(self) -> str:
        sent = (
            ""
            if self.sent is None
            else f"sent {self.sent}" + (f"/{self.planned_samples}" if self.planned_samples else "") + "  "
        )
        left = (
            f"done in {self.elapsed_s:.0f} s"
            if self.done
            else f"{max(0.0, self.planned_s - self.elapsed_s):.0f} s left"
        )
        return (
            f"{self.label}: {sent}answered {self.samples - self.errors}  failed {self.errors} "
            f"({self.error_pct:.1f}%)  {left}"
        )


def arrivals_due(schedule_start_epoch_s: float | None, now_epoch_s: float, warmup_s: float, rate: float, n: int) -> int:
    """How many of ``n`` even arrivals at ``rate``/s after ``warmup_s`` are due at ``now_epoch_s`` (first at 0)."""
    if schedule_start_epoch_s is None:
        return 0
    since_first = now_epoch_s - schedule_start_epoch_s - warmup_s
    return 0 if since_first < 0 else min(n, int(since_first * rate) + 1)


class TerminalProgress:
    """One updating line on a terminal; on a pipe, a plain line every ``every_s`` seconds."""

    def __init__(self, stream=None, every_s: float = 10.0):
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last: float | None = None

    def __call__(self, p: Progress) -> None:
        if self.stream.isatty():
            self.stream.write("\r" + p.line().ljust(78) + ("\n" if p.done else ""))
        elif p.done or self._last is None or time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.stream.write(p.line() + "\n")
        self.stream.flush()


class NotebookProgress:
    """One output line in a Jupyter notebook, updated in place (IPython display handle)."""

    def __init__(self):
        self._handle = None

    def __call__(self, p: Progress) -> None:
        from IPython.display import Pretty, display

        if self._handle is None:
            self._handle = display(Pretty(p.line()), display_id=True)
        else:
            self._handle.update(Pretty(p.line()))


def default_progress() -> Callable[[Progress], None]:
    """NotebookProgress inside a Jupyter kernel, TerminalProgress otherwise."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return NotebookProgress() if shell is not None and hasattr(shell, "kernel") else TerminalProgress()


_SUMMARY_RE = re.compile(r"^summary ([+=])\s+(\d+) in [\d:]+ .*?Err:\s+(\d+)")


class SummaryTracker:
    """Cumulative samples/errors from summariser lines (``summary +`` deltas, ``summary =`` totals)."""

    def __init__(self):
        self.samples = 0
        self.errors = 0
        self.started_at: float | None = None  # monotonic clock
        self.test_start_epoch_s: float | None = None  # JMeter's test start, as it printed it
        self.schedule_start_epoch_s: float | None = None  # when the plans' setUp restarted the schedule clock

    def feed(self, line: str, now: float) -> bool:
        """Take one stdout line; True if the counts changed."""
        if self.started_at is None and line.startswith("Starting standalone test"):
            self.started_at = now
            stamp = re.search(r"\((\d{12,})\)", line)
            self.test_start_epoch_s = int(stamp.group(1)) / 1000.0 if stamp else None
        elif line.startswith("swlab: schedule starts ("):
            stamp = re.search(r"\((\d+)\)", line)
            self.schedule_start_epoch_s = int(stamp.group(1)) / 1000.0 if stamp else None
        match = _SUMMARY_RE.match(line.strip())
        if not match:
            return False
        kind, count, errors = match.group(1), int(match.group(2)), int(match.group(3))
        if kind == "+":
            self.samples, self.errors = self.samples + count, self.errors + errors
        else:
            self.samples, self.errors = count, errors
        return True
