"""Warm environments and concurrency: the pool (LIFO reuse, reaping) and the reserved/account limits.

Warm environments are reused LIFO: the most recently used one serves the next
invoke, so a burst's extra environments go idle and are reaped after
``idle_ttl_s`` instead of being kept warm by round-robin reuse — closer to
how Lambda keeps a function's footprint at the concurrency it needs.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from swlab.localcloud.lambda_runtime.execution_environment import EnvState, ExecutionEnvironment
from swlab.localcloud.lambda_runtime.spec import RuntimeSpec


class Concurrency:
    """Concurrent executions per function (reserved) and per account (unreserved pool)."""

    def __init__(self, account_limit: int) -> None:
        self.account_limit = account_limit
        self._lock = threading.Lock()
        self._per_fn: dict[tuple, int] = {}
        self._unreserved: dict[tuple, int] = {}

    def try_acquire(self, key: tuple, reserved: int | None, reserved_total: int) -> tuple[str | None, int]:
        """(None, count in flight) or (throttle reason, count)."""
        pool = key[:2]
        with self._lock:
            n = self._per_fn.get(key, 0)
            if reserved is not None:
                if n >= reserved:
                    return "ReservedFunctionConcurrentInvocationLimitExceeded", n
            else:
                u = self._unreserved.get(pool, 0)
                if u >= self.account_limit - reserved_total:
                    return "ConcurrentInvocationLimitExceeded", n
                self._unreserved[pool] = u + 1
            self._per_fn[key] = n + 1
            return None, n + 1

    def release(self, key: tuple, reserved: bool) -> None:
        with self._lock:
            self._per_fn[key] -= 1
            if not reserved:
                self._unreserved[key[:2]] -= 1


class Pool:
    """Every live environment; idle ones per function version (:attr:`RuntimeSpec.env_key`) in a LIFO stack.

    Provisioned environments (``env.provisioned``) serve first and are not ended for idleness or a
    forced cold start, only when their function's code changes, it is deleted or its configuration removed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[ExecutionEnvironment]] = {}
        self.envs: set[ExecutionEnvironment] = set()

    def add(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            self.envs.add(env)

    def take_idle(self, spec: RuntimeSpec) -> ExecutionEnvironment | None:
        stale = []
        try:
            with self._lock:
                stack = self._idle.get(spec.env_key)
                provisioned = [i for i, e in enumerate(stack or []) if e.provisioned]
                if stack and provisioned:  # provisioned environments serve first, as on AWS
                    stack.append(stack.pop(provisioned[-1]))
                while stack:
                    env = stack.pop()
                    if env.spec.signature == spec.signature and env.claim():
                        return env
                    self.envs.discard(env)  # exited while idle, or older code/configuration
                    stale.append(env)
            return None
        finally:
            for env in stale:
                env.kill("retired")

    def put_idle(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            if not env.set_idle():
                return
            self._idle.setdefault(env.spec.env_key, []).append(env)

    def remove(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            self.envs.discard(env)
            stack = self._idle.get(env.spec.env_key)
            if stack and env in stack:
                stack.remove(env)

    def take_expired(
        self, ttl_s: float, key: tuple | None = None, name: str | None = None, keep_provisioned: bool = False
    ) -> list[ExecutionEnvironment]:
        """Remove and return idle environments idle longer than ``ttl_s`` (of one function if ``key`` or ``name``:
        a key of 3 is every version of a function, of 4 one version)."""
        now = time.monotonic()
        out = []
        with self._lock:
            for k, stack in self._idle.items():
                if (key is not None and k[: len(key)] != key) or (name is not None and k[2] != name):
                    continue
                keep = [
                    e
                    for e in stack
                    if (now - e.last_used < ttl_s or (keep_provisioned and e.provisioned)) and e.state is EnvState.IDLE
                ]
                out += [e for e in stack if e not in keep]
                stack[:] = keep
        return out

    def end_expired(
        self,
        ttl_s: float,
        reason: str,
        key: tuple | None = None,
        name: str | None = None,
        keep_provisioned: bool = False,
    ) -> list[ExecutionEnvironment]:
        """Kill (with ``reason``) and forget the idle environments :meth:`take_expired` returns."""
        envs = self.take_expired(ttl_s, key, name, keep_provisioned)
        for env in envs:
            env.kill(reason)
            self.remove(env)
        return envs

    def snapshot(self) -> list[ExecutionEnvironment]:
        with self._lock:
            return list(self.envs)


class Reaper:
    """Ends environments idle longer than ``idle_ttl_s`` (checked every ttl/4, between 50 ms and 1 s).

    ``deleted()`` (called about once a second) names the functions deleted meanwhile: their idle
    environments end too (busy ones end after their invoke, as their function is no longer current).
    """

    def __init__(
        self, pool: Pool, idle_ttl_s: float, stop: threading.Event, deleted: Callable[[], Iterable[tuple]] = tuple
    ) -> None:
        self._pool = pool
        self._idle_ttl_s = idle_ttl_s
        self._stop = stop
        self._deleted = deleted

    def run(self) -> None:
        period = max(0.05, min(1.0, self._idle_ttl_s / 4))
        checked = time.monotonic()
        while not self._stop.wait(period):
            self._pool.end_expired(self._idle_ttl_s, "reaped", keep_provisioned=True)
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                for key in self._deleted():
                    self._pool.end_expired(0.0, "deleted", key)
