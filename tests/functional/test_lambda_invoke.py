"""Lambda Invoke through the local cloud: payloads, context, environment, and every error shape."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
from botocore.exceptions import ClientError
from conftest import environments, invoke_json

from swlab.analysis.log_lines import parse_report_line
from swlab.settings import client

pytestmark = pytest.mark.functional


def report_of(resp: dict) -> dict:
    """The REPORT line of an invoke's tail log, parsed by the lab's analysis parser."""
    tail = base64.b64decode(resp["LogResult"]).decode()
    lines = [line for line in tail.splitlines() if line.startswith("REPORT")]
    assert len(lines) == 1, tail
    parsed = parse_report_line(lines[0])
    assert parsed is not None, lines[0]
    return parsed


def test_echo_sees_event_context_and_aws_environment(aws, deploy_probe, local_cloud):
    name = deploy_probe(
        "echo",
        MemorySize=256,
        Timeout=7,
        Environment={"Variables": {"PROBE_VAR": "mine", "AWS_ENDPOINT_URL": "http://user-wins.invalid"}},
    )
    resp, out = invoke_json(aws("lambda"), name, {"hello": ["world", 1]})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["event"] == {"hello": ["world", 1]}
    ctx, env = out["context"], out["env"]
    assert ctx["function_name"] == name and ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert ctx["memory_limit_in_mb"] == "256" and ctx["log_group_name"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", ctx["log_stream_name"])
    assert 5000 < ctx["remaining_time_in_millis"] <= 7000
    assert re.fullmatch(r"[0-9a-f-]{36}", ctx["aws_request_id"])
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == ctx["log_stream_name"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11" and env["TZ"] == ":UTC"
    assert env["_HANDLER"] == "handler.handler" and env["LAMBDA_TASK_ROOT"] == out["cwd"] == out["sys_path0"]
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SESSION_TOKEN"]
    assert env["PROBE_VAR"] == "mine"
    assert env["AWS_ENDPOINT_URL"] == "http://user-wins.invalid"  # the function's own variables come last


def test_emulator_sets_endpoint_and_zip_functions_see_only_the_aws_runtime(aws, deploy_probe, local_cloud):
    name = deploy_probe("echo")
    _, out = invoke_json(aws("lambda"), name)
    assert out["env"]["AWS_ENDPOINT_URL"] == local_cloud.endpoint_url
    assert out["importable"] == {
        "boto3": True,
        "botocore": True,
        "awslambdaric": True,
        "pandas": False,
        "moto": False,
        "swlab": False,
        "torch": False,
    }


def test_image_packaged_functions_see_the_lab_environment(aws, deploy_probe):
    name = deploy_probe("echo", Tags={"swlab:packaging": "image"})
    _, out = invoke_json(aws("lambda"), name)
    assert out["importable"]["pandas"] and out["importable"]["boto3"]
    assert out["sys_path0"] == out["env"]["LAMBDA_TASK_ROOT"]  # the function's own code still comes first


def test_invoke_by_arn_partial_arn_and_qualifier(aws, deploy_probe):
    name = deploy_probe("echo")
    for ref in (
        f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        f"123456789012:function:{name}",
        f"{name}:$LATEST",
    ):
        resp, out = invoke_json(aws("lambda"), ref, {"ref": ref})
        assert resp["StatusCode"] == 200 and out["event"] == {"ref": ref}


def test_unknown_function_is_404_resource_not_found(aws):
    with pytest.raises(ClientError) as err:
        aws("lambda").invoke(FunctionName="no-such-function", Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:no-such-function" in err.value.response["Error"]["Message"]


def test_payload_must_be_json(aws, deploy_probe):
    name = deploy_probe("echo")
    with pytest.raises(ClientError) as err:
        aws("lambda").invoke(FunctionName=name, Payload=b"{not json")
    assert err.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_payload_over_six_megabytes_is_413(aws, deploy_probe):
    name = deploy_probe("echo")
    big = json.dumps({"blob": "x" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(ClientError) as err:
        aws("lambda").invoke(FunctionName=name, Payload=big)
    assert err.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_response_over_six_megabytes_is_a_function_error(aws, deploy_probe):
    name = deploy_probe("echo")
    resp, out = invoke_json(aws("lambda"), name, {"pad_bytes": 6 * 1024 * 1024 + 10})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Function.ResponseSizeTooLarge"
    _, ok = invoke_json(aws("lambda"), name, {"pad_bytes": 10})
    assert ok == {"pad": "x" * 10}  # the environment survived


def test_dry_run_and_event_invocation_types(aws, deploy_probe, local_cloud):
    name = deploy_probe("echo")
    dry = aws("lambda").invoke(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
    assert dry["StatusCode"] == 204
    assert environments(local_cloud.endpoint_url, name) == []  # a dry run starts nothing
    event = aws("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b'{"async": true}')
    assert event["StatusCode"] == 202
    deadline = time.monotonic() + 10
    while not environments(local_cloud.endpoint_url, name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert environments(local_cloud.endpoint_url, name), "the Event invoke ran in the background"


def test_handler_exception_is_unhandled_error_and_keeps_the_environment(aws, deploy_probe, local_cloud):
    name = deploy_probe("raise")
    resp, out = invoke_json(aws("lambda"), name, {"message": "probe failure"}, LogType="Tail")
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert out["errorType"] == "ProbeError" and out["errorMessage"] == "probe failure"
    assert isinstance(out["stackTrace"], list) and any("handler.py" in frame for frame in out["stackTrace"])
    assert report_of(resp)["cold"]
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "[ERROR] ProbeError: probe failure" in tail and "raise probe about to fail" in tail
    first = environments(local_cloud.endpoint_url, name)
    resp2, _ = invoke_json(aws("lambda"), name, LogType="Tail")
    assert resp2["FunctionError"] == "Unhandled" and not report_of(resp2)["cold"]
    assert [e["id"] for e in environments(local_cloud.endpoint_url, name)] == [e["id"] for e in first]


def test_exit_mid_invoke_is_runtime_exit_error_and_replaces_the_environment(aws, deploy_probe, local_cloud):
    name = deploy_probe("exit")
    resp, out = invoke_json(aws("lambda"), name, {"code": 1}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.ExitError"
    rid = resp["ResponseMetadata"]["RequestId"]
    assert out["errorMessage"] == f"RequestId: {rid} Error: Runtime exited with error: exit status 1"
    report = report_of(resp)
    assert report["status"] == "error" and report["error_type"] == "Runtime.ExitError"
    assert "exit probe leaving now" in base64.b64decode(resp["LogResult"]).decode()
    assert environments(local_cloud.endpoint_url, name) == []
    resp2, _ = invoke_json(aws("lambda"), name, {"code": 3}, LogType="Tail")
    assert report_of(resp2)["cold"]


def test_timeout_kills_the_environment_and_answers_like_aws(aws, deploy_probe, local_cloud, lab_settings):
    lam = client(lab_settings, "lambda", read_timeout=30, retries={"total_max_attempts": 1})
    name = deploy_probe("sleep", Timeout=1)
    started = time.monotonic()
    resp, out = invoke_json(lam, name, {"seconds": 20}, LogType="Tail")
    elapsed = time.monotonic() - started
    assert elapsed < 4, "the invoke ended at the timeout, not when the handler would have"
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    rid = resp["ResponseMetadata"]["RequestId"]
    assert out["errorType"] == "Sandbox.Timedout", out
    assert re.fullmatch(rf"RequestId: {rid} Error: Task timed out after 1\.\d\d seconds", out["errorMessage"]), out
    report = report_of(resp)
    assert report["status"] == "timeout" and 1000 <= report["duration_ms"] < 2500
    assert environments(local_cloud.endpoint_url, name) == []
    resp2, out2 = invoke_json(lam, name, {"seconds": 0}, LogType="Tail")
    assert out2 == {"slept": 0} and report_of(resp2)["cold"]


def test_memory_watchdog_kills_past_memory_size(aws, deploy_probe, local_cloud):
    name = deploy_probe("alloc", MemorySize=128, Timeout=20)
    small, out = invoke_json(aws("lambda"), name, {"mb": 40}, LogType="Tail")
    assert out == {"allocated_mb": 40}
    assert 40 <= report_of(small)["max_memory_used_mb"] < 128
    resp, out = invoke_json(aws("lambda"), name, {"mb": 400, "hold_s": 5}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.OutOfMemory"
    report = report_of(resp)
    assert report["max_memory_used_mb"] >= 128 and report["error_type"] == "Runtime.OutOfMemory"
    assert report["duration_ms"] < 4000, "killed while allocating, not after the hold"
    assert environments(local_cloud.endpoint_url, name) == []


def test_import_failure_is_init_error_and_every_invoke_starts_cold(aws, deploy_probe, local_cloud):
    name = deploy_probe("importfail")
    for _ in range(2):
        resp, out = invoke_json(aws("lambda"), name, LogType="Tail")
        assert resp["FunctionError"] == "Unhandled"
        assert out["errorType"] == "Runtime.ImportModuleError"
        assert out["errorMessage"].startswith("Unable to import module 'handler'")
        assert "swlab_probe_module_that_does_not_exist" in out["errorMessage"]
        report = report_of(resp)
        assert report["cold"] and report["error_type"] == "Runtime.ImportModuleError"
        assert environments(local_cloud.endpoint_url, name) == []
    from conftest import log_messages, wait_for

    def both_init_reports() -> list[str]:  # logs are flushed in batches: wait for both, not the first
        found = [
            e["message"]
            for e in log_messages(aws("logs"), name, contains="INIT_REPORT")
            if e["message"].startswith("INIT_REPORT")
        ]
        return found if len(found) >= 2 else []

    init_reports = wait_for(both_init_reports, 10) or [
        e["message"] for e in log_messages(aws("logs"), name, contains="INIT_REPORT")
    ]
    assert len(init_reports) == 2 and all(
        re.fullmatch(
            r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError\t\n",
            m,
        )
        for m in init_reports
    ), init_reports


@pytest.mark.parametrize("runtime", ["python3.12", "python3.9"])
def test_the_declared_runtime_runs_on_its_interpreter_or_the_invoke_names_the_missing_one(aws, deploy_probe, runtime):
    import shutil
    import subprocess

    version = runtime.removeprefix("python")
    exe = shutil.which(runtime)
    usable = exe is not None and subprocess.run([exe, "-c", "import awslambdaric"], capture_output=True).returncode == 0
    name = deploy_probe("echo", Runtime=runtime)
    if usable:
        _, out = invoke_json(aws("lambda"), name)
        assert out["python"] == version and out["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
        return
    with pytest.raises(ClientError) as info:
        aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    message = info.value.response["Error"]["Message"]
    assert runtime in message and f"Python {version}" in message or f"no {runtime} interpreter" in message, message


def test_sys_exit_0_in_a_handler_is_runtime_exited_without_providing_a_reason(aws, deploy_probe):
    name = deploy_probe("exit")
    resp, out = invoke_json(aws("lambda"), name, {"how": "sys.exit", "code": 0}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled" and out == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited without providing a reason",
    }
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert f"RequestId: {rid} Error: Runtime exited without providing a reason\nRuntime.ExitError" in tail


def _unique_package(probe: str) -> bytes:
    """The probe's package plus a file that makes its hash (the unzipped folder's name) new."""
    import io
    import uuid
    import zipfile

    from conftest import zip_probe

    buf = io.BytesIO(zip_probe(probe))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("unique.txt", uuid.uuid4().hex)
    return buf.getvalue()


def test_create_and_update_function_unzip_the_package_before_the_first_invoke(aws, local_cloud):
    """AWS prepares a package while the function is Pending: the first invoke does not unzip it."""
    import hashlib
    import uuid

    from conftest import probe_role_arn, wait_for

    code_root, lam = local_cloud.work_dir / "lambda" / "code", aws("lambda")
    package, name = _unique_package("echo"), f"probe-unzip-{uuid.uuid4().hex[:8]}"
    role = probe_role_arn(aws("iam"))
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handler", Code={"ZipFile": package}
    )
    folder = code_root / hashlib.sha256(package).hexdigest()
    assert wait_for(lambda: (folder / ".complete").exists(), timeout_s=10), "not unzipped after CreateFunction"
    assert (folder / "handler.py").is_file() and (folder / "unique.txt").is_file()
    assert environments(local_cloud.endpoint_url, name) == []  # nothing invoked it
    package = _unique_package("importfail")
    lam.update_function_code(FunctionName=name, ZipFile=package)
    folder = code_root / hashlib.sha256(package).hexdigest()
    assert wait_for(lambda: (folder / ".complete").exists(), timeout_s=10), "not unzipped after UpdateFunctionCode"
