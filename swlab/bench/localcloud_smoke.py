"""A smoke check of a running local cloud (or of AWS): one real call per service the lab uses.

``python -m swlab.bench.localcloud_smoke`` (with ``AWS_ENDPOINT_URL`` set) or
:func:`run_smoke` from code. It creates a few short-lived resources under the
name prefix ``swlab-smoke-<random>``, checks each answer, deletes them again,
and prints one ``ok``/``FAIL`` line per check. Exit code 0 only if all pass.
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
import zipfile
from typing import Any, Callable

from swlab.settings import Settings, client, load_settings

_ECHO_HANDLER = "def handler(event, context):\n    return {'echo': event, 'request_id': context.aws_request_id}\n"
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", source)
    return buf.getvalue()


def run_smoke(settings: Settings, say: Callable[[str], None] = print) -> bool:
    """Run every check; return True when all passed. Resources are removed whatever happens."""
    prefix = f"swlab-smoke-{uuid.uuid4().hex[:8]}"
    cleanups: list[Callable[[], Any]] = []
    ok = True

    def check(name: str, fn: Callable[[], str]) -> None:
        nonlocal ok
        start = time.perf_counter()
        try:
            detail = fn()
            say(f"ok    {name:<28} {1000 * (time.perf_counter() - start):8.1f} ms  {detail}")
        except Exception as exc:  # noqa: BLE001 — report every failure, keep checking
            ok = False
            say(f"FAIL  {name:<28} {type(exc).__name__}: {exc}")

    s3, ddb, lam, iam, sfn = (client(settings, s) for s in ("s3", "dynamodb", "lambda", "iam", "stepfunctions"))

    def s3_roundtrip() -> str:
        s3.create_bucket(Bucket=prefix)
        cleanups.append(lambda: (s3.delete_object(Bucket=prefix, Key="k"), s3.delete_bucket(Bucket=prefix)))
        s3.put_object(Bucket=prefix, Key="k", Body=b"hello")
        assert s3.get_object(Bucket=prefix, Key="k")["Body"].read() == b"hello"
        return "put/get 5 bytes"

    def dynamodb_roundtrip() -> str:
        ddb.create_table(
            TableName=prefix,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        cleanups.append(lambda: ddb.delete_table(TableName=prefix))
        ddb.get_waiter("table_exists").wait(TableName=prefix)
        ddb.put_item(TableName=prefix, Item={"id": {"S": "a"}, "v": {"N": "1"}})
        assert ddb.get_item(TableName=prefix, Key={"id": {"S": "a"}})["Item"]["v"] == {"N": "1"}
        return "put/get one item"

    def lambda_cold_then_warm() -> str:
        role = iam.create_role(RoleName=prefix, AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]["Arn"]
        cleanups.append(lambda: iam.delete_role(RoleName=prefix))
        lam.create_function(
            FunctionName=prefix,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _zip(_ECHO_HANDLER)},
            Timeout=10,
            MemorySize=128,
        )
        cleanups.append(lambda: lam.delete_function(FunctionName=prefix))
        lam.get_waiter("function_active_v2").wait(FunctionName=prefix)
        times = []
        for i in range(2):
            t = time.perf_counter()
            resp = lam.invoke(FunctionName=prefix, Payload=json.dumps({"n": i}))
            times.append(1000 * (time.perf_counter() - t))
            body = json.loads(resp["Payload"].read())
            assert "FunctionError" not in resp and body["echo"] == {"n": i}, body
        return f"cold {times[0]:.0f} ms, warm {times[1]:.0f} ms"

    def stepfunctions_execution() -> str:
        role = f"arn:aws:iam::123456789012:role/{prefix}"
        definition = {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Result": {"hi": 1}, "End": True}}}
        arn = sfn.create_state_machine(name=prefix, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
        cleanups.append(lambda: sfn.delete_state_machine(stateMachineArn=arn))
        ex = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        for _ in range(200):
            desc = sfn.describe_execution(executionArn=ex)
            if desc["status"] != "RUNNING":
                break
            time.sleep(0.05)
        assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == {"hi": 1}, desc
        return "Pass state executed"

    for name, fn in [
        ("s3 put/get", s3_roundtrip),
        ("dynamodb put/get", dynamodb_roundtrip),
        ("lambda invoke cold+warm", lambda_cold_then_warm),
        ("stepfunctions execution", stepfunctions_execution),
    ]:
        check(name, fn)
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except Exception as exc:  # noqa: BLE001
            ok = False
            say(f"FAIL  cleanup                      {type(exc).__name__}: {exc}")
    return ok


def main() -> int:
    settings = load_settings()
    print(f"smoke check against {settings.endpoint_url or 'AWS ' + settings.region}")
    return 0 if run_smoke(settings) else 1


if __name__ == "__main__":
    sys.exit(main())
