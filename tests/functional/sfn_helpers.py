"""Small helpers shared by the Step Functions and API Gateway tests (one copy)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

ROLE_ARN = "arn:aws:iam::123456789012:role/swlab-test-sfn"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_state_machine(sfn: Any, definition: dict, sm_type: str = "STANDARD", prefix: str = "sm") -> str:
    return sfn.create_state_machine(
        name=unique(prefix), definition=json.dumps(definition), roleArn=ROLE_ARN, type=sm_type
    )["stateMachineArn"]


def wait_execution(sfn: Any, execution_arn: str, timeout_s: float = 60.0) -> dict:
    """describe_execution until it is no longer RUNNING (fails the test on timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        desc = sfn.describe_execution(executionArn=execution_arn)
        if desc["status"] != "RUNNING":
            return desc
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still RUNNING after {timeout_s} s: {execution_arn}")
        time.sleep(0.02)


def run_execution(sfn: Any, arn: str, payload: Any = None, **kwargs: Any) -> dict:
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload or {}), **kwargs)
    return wait_execution(sfn, started["executionArn"])


def history_events(sfn: Any, execution_arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def chain(n: int, state: dict, prefix: str = "S") -> dict:
    """A definition of ``n`` copies of ``state`` run one after another."""
    states = {
        f"{prefix}{i}": {**state, **({"Next": f"{prefix}{i + 1}"} if i < n - 1 else {"End": True})} for i in range(n)
    }
    return {"StartAt": f"{prefix}0", "States": states}
