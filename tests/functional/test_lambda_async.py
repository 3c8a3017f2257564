"""Asynchronous invokes (InvocationType Event) as Lambda runs them: the 202's request id, two retries of a
failed event after AWS's delays (1 min, 2 min; 1 s and 2 s here) with the same request id, and the invocation
record an OnFailure / OnSuccess destination (an SQS queue, another function) receives."""

from __future__ import annotations

import json
import time

import pytest
from conftest import deploy, log_messages, wait_for

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    """A local cloud whose async retry delays are 1 s and 2 s (AWS: 60 s and 120 s)."""
    options = {"async_retry_delays_s": [1.0, 2.0], "cpu_model": "off"}
    with LocalCloudProcess(port=0, work_dir=tmp_path_factory.mktemp("async-cloud"), options=options) as cloud:
        settings = load_settings(env={}, target="local", endpoint_url=cloud.endpoint_url, region="us-east-1")
        config = {"retries": {"total_max_attempts": 1}, "read_timeout": 60}
        yield {s: client(settings, s, **config) for s in ("lambda", "iam", "logs", "sqs")}


def queue(sqs) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"dest-{time.time_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive(sqs, url: str, timeout_s: float = 20) -> list[dict]:
    def got() -> list[dict]:
        return [
            json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        ]

    return wait_for(got, timeout_s, 0.2)


def test_a_failed_event_is_retried_twice_with_its_request_id_then_sent_to_on_failure(clients):
    lam, sqs = clients["lambda"], clients["sqs"]
    name = deploy(lam, clients["iam"], "raise")
    url, arn = queue(sqs)
    lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}})
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"message": "m"}).encode())
    assert resp["StatusCode"] == 202
    request_id = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert request_id == resp["ResponseMetadata"]["RequestId"] and len(request_id) == 36
    sent = time.monotonic()

    (record,) = receive(sqs, url)
    assert time.monotonic() - sent >= 2.8  # 1 s then 2 s between the three attempts
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{ARN}{name}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"message": "m"}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ProbeError" and record["responsePayload"]["errorMessage"] == "m"

    def start_lines() -> list[dict]:
        return [e for e in log_messages(clients["logs"], name, "START") if e["message"].startswith("START")]

    starts = wait_for(lambda: (lambda s: s if len(s) >= 3 else None)(start_lines())) or start_lines()
    assert [e["message"].split()[2] for e in starts] == [request_id] * 3
    gaps = [(b["timestamp"] - a["timestamp"]) / 1000 for a, b in zip(starts, starts[1:])]
    assert 0.9 <= gaps[0] < gaps[1] and gaps[1] >= 1.9, gaps


def test_maximum_retry_attempts_and_a_function_destination(clients):
    """No retry (MaximumRetryAttempts 0); the OnFailure destination is a function, whose own success goes
    to its OnSuccess queue: the record the function received is there as its event."""
    lam, sqs = clients["lambda"], clients["sqs"]
    failing = deploy(lam, clients["iam"], "raise")
    echo = deploy(lam, clients["iam"], "echo")
    url, arn = queue(sqs)
    lam.put_function_event_invoke_config(FunctionName=echo, DestinationConfig={"OnSuccess": {"Destination": arn}})
    lam.put_function_event_invoke_config(
        FunctionName=failing,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": f"{ARN}{echo}"}},
    )
    resp = lam.invoke(FunctionName=failing, InvocationType="Event", Payload=b'{"message": "x"}')
    request_id = resp["ResponseMetadata"]["RequestId"]

    (success,) = receive(sqs, url)
    assert success["requestContext"]["condition"] == "Success"
    assert success["requestContext"]["functionArn"] == f"{ARN}{echo}:$LATEST"
    assert "functionError" not in success["responseContext"]
    failure = success["requestPayload"]
    assert success["responsePayload"]["event"] == failure
    assert failure["requestContext"]["requestId"] == request_id
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 1

    def start_lines() -> list[dict]:
        return [e for e in log_messages(clients["logs"], failing, "START") if e["message"].startswith("START")]

    wait_for(start_lines, timeout_s=30)  # its logs may trail the destination's message on a busy machine
    assert len(start_lines()) == 1
