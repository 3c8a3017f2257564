"""Functions known to moto's Lambda backend → a cached :class:`RuntimeSpec` per configuration signature.

Function configuration is read from moto's Lambda backend on every invoke (a
dict lookup); the spec built from it (unzipped code, environment) is cached
until its signature (code hash, handler, runtime, memory, timeout,
environment, packaging tag) changes — then ``on_change(key)`` retires the old
environments, as AWS does after UpdateFunctionCode/UpdateFunctionConfiguration.

Zip functions run isolated (``isolation``): ``python -S`` with ``PYTHONPATH`` =
the code, then the AWS runtime's packages, so a dependency missing from the zip
fails locally as it would on AWS. A function tagged ``swlab:packaging=image``
stands for a container image, which brings its own packages: it sees the lab's
whole environment (torch, ...).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from swlab.localcloud.lambda_runtime.interpreters import interpreter_for
from swlab.localcloud.lambda_runtime.spec import RuntimeSpec, aws_runtime_dir, extract_code

PACKAGING_TAG = "swlab:packaging"  # "image": the function's image would bring its packages → not isolated
_LAMBDA_BACKENDS: Any = None
_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


def _lambda_backends() -> Any:
    global _LAMBDA_BACKENDS
    if _LAMBDA_BACKENDS is None:
        from moto.awslambda.models import lambda_backends

        _LAMBDA_BACKENDS = lambda_backends
    return _LAMBDA_BACKENDS


def _ephemeral_mb(fn: Any) -> int:
    """The function's EphemeralStorage size in MB (512 by default)."""
    size = getattr(fn, "ephemeral_storage", 512)
    return int(size.get("Size", 512) if isinstance(size, dict) else size or 512)


def parse_function_ref(ref: str) -> tuple[str, str | None, str | None, str | None]:
    """``name``, ``name:qualifier``, a full ARN or ``account:function:name`` → (name, qualifier, account, region)."""
    if ":function:" not in ref:
        name, _, qualifier = ref.partition(":")
        return name, qualifier or None, None, None
    head, _, tail = ref.partition(":function:")
    name, _, qualifier = tail.partition(":")
    parts = head.split(":")
    region = parts[3] if len(parts) >= 5 and parts[0] == "arn" else None
    return name, qualifier or None, parts[-1] or None, region


def request_region(environ: dict, default: str) -> str:
    """The region of a signed request (its credential scope), else ``default``."""
    m = _CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else default


class FunctionCatalog:
    """Function configuration from moto's Lambda backend → cached :class:`RuntimeSpec` per signature."""

    def __init__(
        self, work_dir: Path, isolation: bool, on_change: Callable[[tuple], None], python: str = sys.executable
    ) -> None:
        self.python = python
        self.code_root = work_dir / "code"
        self.runtime_dir = aws_runtime_dir(work_dir / "runtime")
        self.isolation = isolation
        self._on_change = on_change
        self._specs: dict[tuple, RuntimeSpec] = {}
        self._lock = threading.Lock()
        self._reserved: dict[tuple, tuple[float, int]] = {}

    @staticmethod
    def backend(account: str, region: str) -> Any:
        return _lambda_backends()[account][region]

    def lookup(
        self, account: str, region: str, name: str, qualifier: str | None = None
    ) -> tuple[RuntimeSpec, Any] | None:
        """The spec of the version ``qualifier`` names (a version, an alias, ``$LATEST`` or None) and the
        function's ``$LATEST`` configuration (function-wide settings: reserved concurrency), or None if unknown.

        Published versions are moto's copies of ``$LATEST`` at PublishVersion; each version has its own
        spec and so its own environments (:attr:`RuntimeSpec.env_key`).
        """
        backend = self.backend(account, region)
        try:
            fn = backend.get_function(name, qualifier or "$LATEST")
            latest = fn if not qualifier else backend.get_function(name, "$LATEST")
        except Exception:  # noqa: BLE001 — moto's UnknownFunctionException and friends
            return None
        if fn is None or latest is None:
            return None
        version = str(fn.version)
        signature = (
            fn.code_sha_256,
            fn.handler,
            fn.run_time,
            fn.memory_size,
            fn.timeout,
            fn.package_type,
            tuple(sorted((fn.environment_vars or {}).items())),
            (fn.tags or {}).get(PACKAGING_TAG),
            _ephemeral_mb(fn),
            version,
        )
        key = (account, region, fn.function_name, version)
        spec = self._specs.get(key)
        if spec is not None and spec.signature == signature:
            return spec, fn
        if fn.package_type == "Zip" and getattr(fn, "code_bytes", b""):
            # Unzip outside the lock (extract_code is safe to race; _build then finds it done): the first
            # invocations of different functions, e.g. a Parallel state's three model branches with ~140 MB
            # of packages each, unzip at the same time instead of one after another (measured: the third
            # ONNX branch of a cold Workflow 2 waited ~4 s for the others' unzips).
            extract_code(fn.code_bytes, self.code_root, fn.code_digest)
        with self._lock:
            spec = self._specs.get(key)
            if spec is None or spec.signature != signature:
                old, spec = spec, self._build(account, region, fn, signature, version)
                self._specs[key] = spec
                if old is not None:
                    self._on_change(key)
        return spec, latest

    def _build(self, account: str, region: str, fn: Any, signature: tuple, version: str) -> RuntimeSpec:
        if fn.package_type != "Zip" or not getattr(fn, "code_bytes", b""):
            raise ValueError(f"function {fn.function_name}: the local cloud runs Zip packages only")
        code_dir = extract_code(fn.code_bytes, self.code_root, fn.code_digest)
        image_like = (fn.tags or {}).get(PACKAGING_TAG) == "image"
        runtime = fn.run_time or "python3.11"
        python, own = interpreter_for(runtime, self.python)  # RuntimeUnavailable (a ValueError) if none
        return RuntimeSpec(
            name=fn.function_name,
            arn=f"arn:aws:lambda:{region}:{account}:function:{fn.function_name}",
            account_id=account,
            region=region,
            handler=fn.handler,
            runtime=runtime,
            memory_mb=int(fn.memory_size),
            timeout_s=float(fn.timeout),
            code_dir=code_dir,
            user_env=tuple(sorted((fn.environment_vars or {}).items())),
            isolated=self.isolation and not image_like and own,
            signature=signature,
            ephemeral_mb=_ephemeral_mb(fn),
            python=python,
            own_python=own,
            version=version,
        )

    def reserved_total(self, account: str, region: str) -> int:
        """Sum of reserved concurrency over the region's functions (cached for a second)."""
        now = time.monotonic()
        cached = self._reserved.get((account, region))
        if cached and now - cached[0] < 1.0:
            return cached[1]
        total = sum(int(f.reserved_concurrency or 0) for f in self.backend(account, region).list_functions())
        self._reserved[(account, region)] = (now, total)
        return total

    def forget_deleted(self) -> list[tuple]:
        """Functions deleted from moto's backend since they last ran: forgotten here, returned (their keys)."""
        gone = []
        for key in list(self._specs):
            account, region, name = key[:3]
            try:
                exists = name in self.backend(account, region)._lambdas._functions
            except Exception:  # noqa: BLE001 — moto's internals moved: ask the public way
                exists = self.lookup(account, region, name) is not None
            if not exists:
                with self._lock:
                    self._specs.pop(key, None)
                gone.append(key)
        return gone

    def current(self, key: tuple) -> RuntimeSpec | None:
        return self._specs.get(key)
