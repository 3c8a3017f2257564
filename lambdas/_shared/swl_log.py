"""One-line JSON logs on stdout (CloudWatch Logs keeps one event per line)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


def log(message: str, level: str = "INFO", stream: TextIO | None = None, **fields: Any) -> dict[str, Any]:
    """Write one JSON log line and return the record (handy in tests)."""
    record = {"ts": round(time.time(), 3), "level": level, "message": message, **fields}
    print(json.dumps(record, default=str, separators=(",", ":")), file=stream or sys.stdout, flush=True)
    return record


class Timer:
    """``with Timer() as t: ...`` then ``t.ms`` (wall-clock milliseconds, 3 decimals)."""

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        self.ms = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ms = round((time.perf_counter() - self._start) * 1000.0, 3)
