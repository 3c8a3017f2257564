"""A stage's live progress, from the notebook's kernel to the runner's terminal: one small file in the run.

The kernel runs in another process and its output goes into the executed notebook, so a long step
(a load test, the deploy, the collect) also writes one line of progress into ``<run>/progress.json``
with :class:`ProgressFile` (atomically, at most about twice a second). While a stage runs, the runner
(:mod:`swlab.run.stages`) polls that file with :class:`LiveLine`: on a terminal it redraws one line
in place; on a pipe or in a file (CI logs) it shows nothing until the stage ends, and the stage's one
line then ends with the last progress line. Run by hand in Jupyter, the file is written and no one reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, TextIO

PROGRESS_FILE = "progress.json"


def progress_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / PROGRESS_FILE


class ProgressFile:
    """The kernel's side: ``ProgressFile(run_dir)("deployed 3 of 9 functions")``, throttled to ``every_s``."""

    def __init__(self, run_dir: str | Path, every_s: float = 0.5) -> None:
        self.path = progress_path(run_dir)
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, line: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        tmp = self.path.with_name(f".{PROGRESS_FILE}.{os.getpid()}")
        try:
            tmp.write_text(json.dumps({"line": line, "at": time.time()}))
            os.replace(tmp, self.path)  # the reader never sees half a file
        except OSError:
            pass  # progress is a courtesy: never fail a stage for it


def read_progress(run_dir: str | Path) -> str | None:
    """The last progress line written into the run, or None (no file, or not one we can read)."""
    try:
        line = json.loads(progress_path(run_dir).read_text()).get("line")
    except (OSError, ValueError, AttributeError):
        return None
    return line if isinstance(line, str) and line else None


def clear_progress(run_dir: str | Path) -> None:
    progress_path(run_dir).unlink(missing_ok=True)


class LiveLine:
    """The runner's side, around one stage: ``with LiveLine(run_dir, "03_load_test_wf1", stream): ...``.

    ``stream`` None means not a terminal: nothing is written, :attr:`last` still holds the last line.
    """

    def __init__(self, run_dir: str | Path, name: str, stream: TextIO | None, poll_s: float = 0.5) -> None:
        self.run_dir, self.name, self.stream, self.poll_s = Path(run_dir), name, stream, poll_s
        self.last: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def __enter__(self) -> "LiveLine":
        clear_progress(self.run_dir)  # a stale line of the previous stage is not this stage's
        self._started = time.monotonic()
        if self.stream is not None:
            self._thread = threading.Thread(target=self._follow, name=f"progress-{self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.poll()
        clear_progress(self.run_dir)
        if self.stream is not None:
            self.stream.write("\r\x1b[K")  # the stage's final line replaces the live one
            self.stream.flush()

    def poll(self) -> str | None:
        line = read_progress(self.run_dir)
        if line is not None:
            self.last = line
        return self.last

    def _follow(self) -> None:
        assert self.stream is not None
        while not self._stop.wait(self.poll_s):
            self.poll()
            elapsed = time.monotonic() - self._started
            text = f"[{self.name}] {elapsed:4.0f} s" + (f"  {self.last}" if self.last else "  running ...")
            width = shutil.get_terminal_size((100, 20)).columns - 1
            try:
                self.stream.write("\r\x1b[K" + text[:width])
                self.stream.flush()
            except (OSError, ValueError):
                return

    def suffix(self) -> str:
        """What the stage's one final line adds: the last progress line, if any."""
        return f"  ({self.last})" if self.last else ""
