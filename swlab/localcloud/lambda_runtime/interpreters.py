"""The interpreter a function's declared runtime runs on: ``python3.12`` → a Python 3.12, or a clear error.

The local cloud's own interpreter (option ``python``) serves the runtime of its version, with the
AWS runtime's packages linked from its site-packages (:func:`~.spec.aws_runtime_dir`). Another
version is looked up on ``PATH`` (``python3.12``); it must run and import ``awslambdaric`` from its
own site-packages (the linked packages are built for the local cloud's version, so such a function
sees that interpreter's packages, not only the AWS runtime's). Otherwise the invoke fails with
:class:`RuntimeUnavailable`, naming the missing interpreter: never another version while
``AWS_EXECUTION_ENV`` claims the declared one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading

_PROBE = "import sys; print('%d.%d' % sys.version_info[:2]); import awslambdaric"
_cache: dict[str, tuple[str | None, str | None]] = {}  # executable → (version, error)
_lock = threading.Lock()


class RuntimeUnavailable(ValueError):
    """No interpreter for a function's declared runtime; the message says which one is missing."""


def _probe(executable: str) -> tuple[str | None, str | None]:
    """(``3.12``, None) if ``executable`` runs and imports awslambdaric, else (version or None, why not)."""
    with _lock:
        if executable in _cache:
            return _cache[executable]
    if executable == sys.executable:
        found: tuple[str | None, str | None] = ("%d.%d" % sys.version_info[:2], None)
    else:
        try:
            out = subprocess.run([executable, "-c", _PROBE], capture_output=True, text=True, timeout=30)
            lines = out.stdout.split()
            version = lines[0] if lines else None
            errors = out.stderr.strip().splitlines() or ["it does not run"]
            # it did not start: the first line says why (pyenv: ... not found); an import failed: the last
            found = (version, None) if out.returncode == 0 else (version, errors[-1] if version else errors[0])
        except (OSError, subprocess.TimeoutExpired) as exc:
            found = (None, str(exc))
    with _lock:
        _cache[executable] = found
    return found


def interpreter_for(runtime: str, default: str) -> tuple[str, bool]:
    """→ (executable, is the local cloud's own interpreter) for ``runtime`` (``python3.12``).

    Raises :class:`RuntimeUnavailable` when no interpreter of that version can run the function.
    """
    wanted = runtime.removeprefix("python")
    version, error = _probe(default)
    if version == wanted and error is None:
        return default, True
    name = f"python{wanted}"
    executable = shutil.which(name)
    if executable is None:
        raise RuntimeUnavailable(
            f"runtime {runtime}: no {name} interpreter on this machine (not on PATH; the "
            f"local cloud's own interpreter is Python {version})"
        )
    found, error = _probe(executable)
    if found != wanted or error is not None:
        raise RuntimeUnavailable(
            f"runtime {runtime}: {executable} cannot run Lambda functions "
            f"(Python {found or '?'}; {error or 'wrong version'}); install Python {wanted} "
            "with awslambdaric to run it"
        )
    return executable, False
