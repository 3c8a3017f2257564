"""One deploy or teardown of a stack at a time: an advisory file lock per stack and target.

``<runs_dir>/deploy/<stack>-<target>.lock`` is held (``flock``) for the whole deploy or teardown; it
holds the owner's pid and command. A second ``scripts/deploy`` of the same stack waits for it (saying
so in one line) up to ``wait_s`` seconds, then refuses with one line (:class:`StackBusy`). The kernel
releases the lock when its owner exits, even after ``kill -9``, so a stale file never blocks anyone.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from swlab.settings import Settings


class StackBusy(RuntimeError):
    """Another process holds the stack's lock; the message names it and what to do."""


def lock_path(settings: Settings) -> Path:
    return Path(settings.runs_dir) / "deploy" / f"{settings.stack}-{settings.target}.lock"


@contextmanager
def stack_lock(
    settings: Settings, what: str, wait_s: float = 600.0, say: Callable[[str], None] = print
) -> Iterator[None]:
    """Hold the stack's lock for ``what`` (deploy, teardown); wait up to ``wait_s`` for another holder."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        deadline, told = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                owner = fh.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise StackBusy(
                        f"stack {settings.stack} on {settings.target} is busy: {owner}; "
                        f"wait for it to finish or stop it, then run this again"
                    ) from None
                if not told:
                    say(f"waiting for stack {settings.stack} on {settings.target}: {owner} (up to {wait_s:.0f} s)")
                    told = True
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{what} by pid {os.getpid()} ({' '.join(sys.argv[:1])}) since {time.strftime('%H:%M:%S')}")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
