"""Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfig(s), and the environments they keep.

moto 5 has no provisioned concurrency, so the local cloud serves the API itself
(``/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=...``) and keeps
that many environments of the version the qualifier names (an alias is resolved to
its version when the configuration is put) initialised:

* each is spawned at once (INIT_START in the version's log group, as AWS logs it at
  allocation), with ``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`` and
  AWS's init limit for provisioned environments (130 s or the function timeout,
  whichever is higher, instead of 10 s);
* once initialised it waits in the pool and serves invocations before any on-demand
  environment; an invocation it serves is warm (no ``Init Duration`` in REPORT);
* it is not reaped for idleness nor ended by a forced cold start; one that dies
  (crash, timeout, out of memory) is replaced after the invocation;
* ``Status`` is IN_PROGRESS until all are initialised, then READY (FAILED if an init failed).

Requests beyond the provisioned environments spill over to on-demand ones (cold starts), as on AWS.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from swlab.localcloud.lambda_runtime.catalog import parse_function_ref, request_region
from swlab.localcloud.lambda_runtime.dataplane import LambdaDataPlane, Outcome, json_error
from swlab.localcloud.lambda_runtime.execution_environment import ExecutionEnvironment

if TYPE_CHECKING:
    from swlab.localcloud.lambda_runtime.spec import RuntimeSpec

PATH_PREFIX = "/2019-09-30/functions/"
PATH_SUFFIX = "/provisioned-concurrency"
_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Not Allowed"}
MIN_INIT_LIMIT_S = 130.0  # AWS: 130 s or the function's timeout, whichever is higher


@dataclass
class Config:
    """One configuration: ``qualifier`` as the caller named it, ``spec`` of the version it resolves to."""

    qualifier: str
    requested: int
    spec: "RuntimeSpec"
    last_modified: str
    failed: str | None = None
    envs: list[ExecutionEnvironment] = field(default_factory=list)

    def allocated(self) -> int:
        return sum(1 for e in self.envs if e.ready.is_set() and not e.is_dead() and e.init_error is None)

    def describe(self, arn: str) -> dict[str, Any]:
        allocated = self.allocated()
        status = "FAILED" if self.failed else ("READY" if allocated >= self.requested else "IN_PROGRESS")
        out = {
            "FunctionArn": f"{arn}:{self.qualifier}",
            "RequestedProvisionedConcurrentExecutions": self.requested,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": status,
            "LastModified": self.last_modified,
        }
        if self.failed:
            out["StatusReason"] = self.failed
        return out


class ProvisionedConcurrency:
    """The configurations of one data plane, keyed by (account, region, name, qualifier)."""

    def __init__(self, plane: LambdaDataPlane) -> None:
        self.plane = plane
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str, str, str], Config] = {}

    # -- HTTP ----------------------------------------------------------------------------------
    @staticmethod
    def matches(environ: dict) -> bool:
        path = environ.get("PATH_INFO", "")
        return path.startswith(PATH_PREFIX) and path.endswith(PATH_SUFFIX)

    def app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        ref = unquote(environ["PATH_INFO"][len(PATH_PREFIX) : -len(PATH_SUFFIX)])
        name, in_ref, account, region = parse_function_ref(ref)
        account, region = account or self.plane.account_id, region or request_region(environ, self.plane.region)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [in_ref or ""])[0]
        method = environ["REQUEST_METHOD"]
        if method == "GET" and "List" in query:
            outcome = self._list(account, region, name)
        elif method == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
            outcome = self.put(account, region, name, qualifier, int(body.get("ProvisionedConcurrentExecutions", 0)))
        elif method == "GET":
            outcome = self._get(account, region, name, qualifier)
        elif method == "DELETE":
            outcome = self.delete(account, region, name, qualifier)
        else:
            outcome = _error(405, "InvalidRequestContentException", f"{method} is not supported here")
        size = ("Content-Length", str(len(outcome.body)))
        start_response(f"{outcome.status} {_REASONS.get(outcome.status, 'OK')}", outcome.headers + [size])
        return [outcome.body]

    # -- operations ------------------------------------------------------------------------------
    def put(self, account: str, region: str, name: str, qualifier: str, count: int) -> Outcome:
        if count < 1:
            return _error(400, "InvalidParameterValueException", "ProvisionedConcurrentExecutions must be at least 1")
        if not qualifier or qualifier == "$LATEST":
            return _error(
                400,
                "InvalidParameterValueException",
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
            )
        found = self.plane.catalog.lookup(account, region, name, qualifier)
        if found is None:
            return _not_found(account, region, name, qualifier)
        spec = found[0]
        key = (account, region, name, qualifier)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        with self._lock:
            old = self._configs.get(key)
            config = Config(qualifier, count, spec, now)
            if old is not None and old.spec is spec:
                config.envs = [e for e in old.envs if not e.is_dead()]
            elif old is not None:
                self._end(old.envs)
            surplus, config.envs = config.envs[count:], config.envs[:count]
            self._end(surplus)
            self._configs[key] = config
        self.top_up(config)
        return _json(202, config.describe(spec.arn))

    def _get(self, account: str, region: str, name: str, qualifier: str) -> Outcome:
        config = self._configs.get((account, region, name, qualifier))
        if config is None:
            return _error(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found for this function",
            )
        return _json(200, config.describe(config.spec.arn))

    def _list(self, account: str, region: str, name: str) -> Outcome:
        configs = [c for k, c in list(self._configs.items()) if k[:3] == (account, region, name)]
        return _json(200, {"ProvisionedConcurrencyConfigs": [c.describe(c.spec.arn) for c in configs]})

    def delete(self, account: str, region: str, name: str, qualifier: str) -> Outcome:
        with self._lock:
            config = self._configs.pop((account, region, name, qualifier), None)
        if config is None:
            if self.plane.catalog.lookup(account, region, name, qualifier or None) is None:
                return _not_found(account, region, name, qualifier)
        else:
            self._end(config.envs)
        return _json(204, None)

    # -- environments -----------------------------------------------------------------------------
    def top_up(self, config: Config) -> None:
        """Spawn environments until ``requested`` live ones exist (each initialises on its own thread)."""
        with self._lock:
            config.envs = [e for e in config.envs if not e.is_dead()]
            missing = config.requested - len(config.envs)
            fresh = [self.plane.spawn_provisioned(config.spec) for _ in range(max(0, missing))]
            config.envs += fresh
        for env in fresh:
            threading.Thread(
                target=self._initialise, args=(config, env), name="lambda-provisioned", daemon=True
            ).start()

    def _initialise(self, config: Config, env: ExecutionEnvironment) -> None:
        limit = max(MIN_INIT_LIMIT_S, config.spec.timeout_s)
        if env.wait_ready(limit):
            env.init_ms = None  # invocations served by it are warm: no Init Duration in their REPORT
            self.plane.pool.put_idle(env)
            return
        if env.killed_for in ("deprovisioned", "shutdown", "deleted", "retired"):
            return  # ended on purpose while it initialised: not a failed init
        config.failed = self.plane.provisioned_init_failed(env, limit)

    def after_invoke(self, spec: "RuntimeSpec") -> None:
        """A version's provisioned environment may have died in the invocation: replace it."""
        for key, config in list(self._configs.items()):
            if config.spec.env_key == spec.env_key and not config.failed:
                if any(e.is_dead() for e in config.envs):
                    self.top_up(config)

    def forget(self, keys: Iterable[tuple]) -> None:
        """Functions deleted from moto: their configurations go (their environments are ended by the pool)."""
        gone = {k[:3] for k in keys}
        with self._lock:
            for key in [k for k in self._configs if k[:3] in gone]:
                self._end(self._configs.pop(key).envs)

    def _end(self, envs: list[ExecutionEnvironment]) -> None:
        for env in envs:
            env.kill("deprovisioned")
            self.plane.pool.remove(env)


def _json(status: int, body: Any) -> Outcome:
    data = b"" if body is None else json.dumps(body).encode()
    return Outcome(status, [("Content-Type", "application/json")], data)


def _error(status: int, error_type: str, message: str) -> Outcome:
    return json_error(status, error_type, message)


def _not_found(account: str, region: str, name: str, qualifier: str) -> Outcome:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else "")
    return _error(404, "ResourceNotFoundException", f"Function not found: {arn}")
