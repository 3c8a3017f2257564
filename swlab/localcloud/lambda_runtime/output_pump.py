"""Every environment's output, read by one thread (epoll): stdout/stderr line by line, log records whole.

Two pipes per environment, as on AWS: stdout/stderr (:class:`PipeLines`: each line one
CloudWatch event) and the runtime's telemetry log pipe (:class:`LogFrames`: awslambdaric's
framed records, ``_LAMBDA_TELEMETRY_LOG_FD``; a ``logger.exception`` traceback is one event).
The invoking thread drains both itself (:meth:`PipeLines.read`, then :meth:`PipeLines.flush`)
before it writes END, so the function's own output, even without a trailing newline, precedes
its END/REPORT.
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

    def flush(self) -> None:
        """Emit output not ended by a newline (the end of an invocation: it belongs to that one)."""
        with self._lock:
            self._emit_partial()


class LogFrames(PipeLines):
    """The telemetry log pipe: frames of type (4 bytes), length (4), timestamp in µs (8), message, big-endian."""

    HEADER = 16

    def _split_lines(self, data: bytes) -> None:
        buf = self._partial + data
        while len(buf) >= self.HEADER:
            length = int.from_bytes(buf[4:8], "big")
            if len(buf) < self.HEADER + length:
                break
            ts = int.from_bytes(buf[8:16], "big") / 1e6
            message = buf[self.HEADER : self.HEADER + length].decode("utf-8", "replace")
            buf = buf[self.HEADER + length :]
            self._on_line(ts, message if message.endswith("\n") else message + "\n")
        self._partial = buf

    def _emit_partial(self) -> None:
        self._partial = b""  # an incomplete frame at EOF is not a record

    def flush(self) -> None:
        pass  # the runtime writes a frame at once, before it answers: nothing is pending between invocations


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
