"""Force the next invocation of a function to be a cold start, on either target.

On the local cloud, its admin endpoint ends the function's idle environments
(``DELETE /_localcloud/lambda?FunctionName=<name>``) once none of them is busy or
initialising (``GET`` lists them): an environment in use cannot be ended, and a
request that finds it idle a moment later would be warm. On AWS there is no such
call: a configuration change retires every environment of the function, so
(as SeBS does) an environment variable ``SWLAB_COLD_NONCE`` is set to a new
value and the update is awaited. Written for both targets; the AWS path is
exercised here only against moto (this project has no AWS account).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Iterable

from swlab.settings import Settings, client

NONCE_VARIABLE = "SWLAB_COLD_NONCE"


def force_cold(
    settings: Settings, function_names: Iterable[str], lambda_client: Any = None, wait_s: float = 60.0
) -> list[str]:
    """Make the next invocation of each function (full names) a cold start; returns the names handled."""
    names = list(function_names)
    if settings.target == "local":
        _local_wait_quiet(str(settings.endpoint_url), set(names), wait_s)
        for name in names:
            _local_end_environments(str(settings.endpoint_url), name)
        return names
    lam = lambda_client or client(settings, "lambda")
    for name in names:
        _aws_new_configuration(lam, name)
    for name in names:
        _wait_updated(lam, name, wait_s)
    return names


def _local_wait_quiet(
    endpoint_url: str, names: set[str], wait_s: float, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Until no environment of ``names`` is busy or initialising (at most ``wait_s``; then end what is idle)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{endpoint_url.rstrip('/')}/_localcloud/lambda", timeout=30) as resp:
            envs = json.loads(resp.read()).get("environments", [])
        if not any(e.get("function") in names and e.get("state") in ("busy", "init") for e in envs):
            return
        sleep(0.5)


def _local_end_environments(endpoint_url: str, function_name: str) -> None:
    query = urllib.parse.urlencode({"FunctionName": function_name})
    req = urllib.request.Request(f"{endpoint_url.rstrip('/')}/_localcloud/lambda?{query}", method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def _aws_new_configuration(lam: Any, function_name: str) -> None:
    current = lam.get_function_configuration(FunctionName=function_name)
    variables = dict((current.get("Environment") or {}).get("Variables") or {})
    variables[NONCE_VARIABLE] = uuid.uuid4().hex[:12]
    lam.update_function_configuration(FunctionName=function_name, Environment={"Variables": variables})


def _wait_updated(lam: Any, function_name: str, wait_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        cfg = lam.get_function_configuration(FunctionName=function_name)
        if cfg.get("LastUpdateStatus", "Successful") == "Successful" and cfg.get("State", "Active") == "Active":
            return
        if cfg.get("LastUpdateStatus") == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(
                f"{function_name}: configuration update not done after {wait_s:.0f} s "
                f"({cfg.get('LastUpdateStatus')}: {cfg.get('LastUpdateStatusReason', '')})"
            )
        sleep(1.0)
