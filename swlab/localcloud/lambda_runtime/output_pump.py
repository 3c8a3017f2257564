"""Every environment's stdout/stderr (one pipe each), read by one thread (epoll), line by line with timestamps.

The invoking thread drains the pipe itself (:meth:`PipeLines.read`) before it
writes END, so the function's own lines always precede END/REPORT.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import selectors
import threading
import time
from typing import IO, Callable

log = logging.getLogger("swlab.localcloud.lambda")


class PipeLines:
    """A process's output pipe, non-blocking, cut into lines: ``on_line(timestamp, line + "\\n")``."""

    def __init__(self, pipe: IO[bytes], on_line: Callable[[float, str], None]) -> None:
        self._pipe = pipe
        self._on_line = on_line
        self._fd: int | None = pipe.fileno()
        self._lock = threading.Lock()
        self._partial = b""
        os.set_blocking(self._fd, False)

    @property
    def fd(self) -> int | None:
        return self._fd

    def read(self) -> bool:
        """Read what is in the pipe now; returns False at EOF (the caller then unregisters and closes)."""
        with self._lock:
            if self._fd is None:
                return False
            while True:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    return True
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    data = b""
                if not data:
                    self._emit_partial()
                    return False
                self._split_lines(data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._pipe.close()
            self._fd = None

    def _split_lines(self, data: bytes) -> None:
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        now = time.time()
        for line in lines:
            self._on_line(now, line.decode("utf-8", "replace") + "\n")

    def _emit_partial(self) -> None:
        if self._partial:
            self._on_line(time.time(), self._partial.decode("utf-8", "replace") + "\n")
            self._partial = b""


class OutputPump:
    """One thread reading every registered pipe; at EOF it closes the pipe and calls ``on_eof`` in a thread."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        fcntl.fcntl(self._wake_w, fcntl.F_SETFL, os.O_NONBLOCK)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="lambda-output", daemon=True)
        self._thread.start()

    def register(self, lines: PipeLines, on_eof: Callable[[], None], name: str) -> None:
        assert lines.fd is not None
        self._selector.register(lines.fd, selectors.EVENT_READ, (lines, on_eof, name))
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                lines, on_eof, name = key.data
                try:
                    open_ = lines.read()
                except Exception:  # noqa: BLE001 — one environment must not stop the others' output
                    log.exception("reading %s failed", name)
                    open_ = False
                if not open_:
                    self._selector.unregister(key.fd)
                    lines.close()
                    threading.Thread(target=on_eof, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(timeout=5)
