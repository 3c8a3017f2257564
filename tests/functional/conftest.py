"""Functional-tier helpers: deploy the probe functions of ``tests/probes/`` onto the local cloud."""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

PROBES_DIR = Path(__file__).resolve().parents[1] / "probes"
PROBE_ROLE = "swlab-probe-role"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def zip_probe(probe: str) -> bytes:
    """The probe folder as a deployment package (files at the zip's root, as Lambda expects)."""
    folder = PROBES_DIR / probe
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def probe_role_arn(iam: Any) -> str:
    try:
        return iam.get_role(RoleName=PROBE_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=PROBE_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))["Role"]["Arn"]


def deploy(lambda_client: Any, iam: Any, probe: str, name: str | None = None, **config: Any) -> str:
    """Create a function from ``tests/probes/<probe>``; returns its (unique) name."""
    name = name or f"probe-{probe}-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime=config.pop("Runtime", "python3.11"),
        Role=probe_role_arn(iam),
        Handler=config.pop("Handler", "handler.handler"),
        Code={"ZipFile": zip_probe(probe)},
        Timeout=config.pop("Timeout", 3),
        MemorySize=config.pop("MemorySize", 128),
        **config,
    )
    return name


@pytest.fixture(scope="session")
def deploy_probe(aws) -> Callable[..., str]:
    """``deploy_probe("echo", Timeout=5, Environment={"Variables": {...}})`` → function name."""

    def make(probe: str, name: str | None = None, **config: Any) -> str:
        return deploy(aws("lambda"), aws("iam"), probe, name, **config)

    return make


def invoke_json(lambda_client: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict, Any]:
    """Invoke and decode: → (boto3 response, decoded JSON payload or None)."""
    resp = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    raw = resp["Payload"].read()
    return resp, (json.loads(raw) if raw else None)


def environments(endpoint_url: str, function: str | None = None) -> list[dict]:
    """The local cloud's live Lambda environments (its admin endpoint)."""
    with urllib.request.urlopen(endpoint_url + "/_localcloud/lambda", timeout=10) as resp:
        envs = json.loads(resp.read())["environments"]
    return [e for e in envs if function in (None, e["function"])]


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, period_s: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value (the last one on timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(period_s)


def log_messages(logs_client: Any, function: str, contains: str | None = None) -> list[dict]:
    """Every event of ``/aws/lambda/<function>`` (plain-term filter, which moto understands)."""
    kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    if contains:
        kwargs["filterPattern"] = contains
    try:
        pages = logs_client.get_paginator("filter_log_events").paginate(**kwargs)
        return [e for page in pages for e in page["events"]]
    except logs_client.exceptions.ResourceNotFoundException:
        return []
