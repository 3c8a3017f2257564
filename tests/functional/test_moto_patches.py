"""Each patch in swlab.localcloud.moto_patches is still needed: moto's *original*
behaviour is exercised in this (unpatched) pytest process and must still show
the defect the patch works around. When one of these fails after a moto
upgrade, the patch can go. The patched behaviour is tested through the local
cloud in test_stepfunctions.py."""

from __future__ import annotations

import importlib
import json
import pkgutil
import time

import pytest

from swlab.localcloud import moto_patches

pytestmark = pytest.mark.functional

PASS_DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}})
ROLE = "arn:aws:iam::123456789012:role/r"


def _original(name: str, current):
    """moto's function as shipped (this process does not apply the patches, but be safe)."""
    return moto_patches.ORIGINALS.get(name, current)


@pytest.fixture
def parser_backend():
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    return StepFunctionsParserBackend("us-east-1", "123456789012")


def _wait_finished(executions, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(e.status == "RUNNING" for e in executions) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_moto_still_defaults_to_not_executing_state_machines():
    from moto.core.config import default_user_config

    if moto_patches._applied:
        pytest.skip("patches applied in this process")
    assert not default_user_config.get("stepfunctions", {}).get("execute_state_machine", False)


def test_moto_start_execution_without_name_still_collides(parser_backend):
    from moto.stepfunctions.exceptions import ExecutionAlreadyExists
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start = _original("start_execution", StepFunctionsParserBackend.start_execution)
    sm = parser_backend.create_state_machine(name="names", definition=PASS_DEFINITION, roleArn=ROLE)
    first = start(parser_backend, sm.arn, None, "{}")
    assert first.execution_arn.endswith(":None")
    _wait_finished([first])
    with pytest.raises(ExecutionAlreadyExists):
        start(parser_backend, sm.arn, None, "{}")


def test_moto_still_lacks_start_sync_execution():
    from moto.stepfunctions.responses import StepFunctionResponse

    if moto_patches._applied:
        pytest.skip("patches applied in this process")
    assert not hasattr(StepFunctionResponse, "start_sync_execution")


def test_moto_still_parses_the_definition_per_execution(monkeypatch):
    from types import SimpleNamespace

    from moto.stepfunctions.parser.backend import execution_worker

    calls = []
    real_parse = execution_worker.AmazonStateLanguageParser.parse
    monkeypatch.setattr(
        execution_worker.AmazonStateLanguageParser, "parse", staticmethod(lambda d: calls.append(d) or real_parse(d))
    )
    entrypoint = _original("_get_evaluation_entrypoint", execution_worker.ExecutionWorker._get_evaluation_entrypoint)
    worker = SimpleNamespace(
        _evaluation_details=SimpleNamespace(state_machine_details=SimpleNamespace(definition=PASS_DEFINITION))
    )
    entrypoint(worker)
    entrypoint(worker)
    assert len(calls) == 2


def test_cached_program_is_fresh_per_execution_but_tree_is_shared():
    first, second = moto_patches.build_program(PASS_DEFINITION), moto_patches.build_program(PASS_DEFINITION)
    assert first is not second
    assert moto_patches.parse_tree(PASS_DEFINITION) is moto_patches.parse_tree(PASS_DEFINITION)


def test_moto_still_builds_a_client_per_task_at_localhost(monkeypatch):
    from moto.stepfunctions.parser.asl.utils import boto_client

    monkeypatch.setenv("MOTO_PORT", "4999")
    make = _original("boto_client_for", boto_client.boto_client_for)
    a, b = make("us-east-1", "lambda"), make("us-east-1", "lambda")
    assert a is not b
    assert a.meta.endpoint_url == "http://localhost:4999"


def test_cached_client_is_shared_and_uses_ipv4_loopback(monkeypatch):
    monkeypatch.setenv("MOTO_PORT", "4998")
    a = moto_patches.cached_boto_client_for("us-east-1", "dynamodb")
    assert a is moto_patches.cached_boto_client_for("us-east-1", "dynamodb")
    assert a.meta.endpoint_url == "http://127.0.0.1:4998"


def test_every_module_using_boto_client_for_is_patched():
    """If upstream adds a service integration, _CLIENT_USERS must list its module."""
    import moto.stepfunctions.parser as parser_pkg
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = _original("boto_client_for", boto_client.boto_client_for)
    users = set()
    for info in pkgutil.walk_packages(parser_pkg.__path__, parser_pkg.__name__ + "."):
        if ".test_state" in info.name or info.name.endswith(".boto_client"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - optional modules with missing extras
            continue
        if getattr(module, "boto_client_for", None) in (original, moto_patches.cached_boto_client_for):
            users.add(info.name)
    assert users == set(moto_patches._CLIENT_USERS)


def test_moto_still_keeps_every_finished_execution_and_thread(parser_backend):
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.parser.utils import TMP_THREADS

    start = _original("start_execution", StepFunctionsParserBackend.start_execution)
    sm = parser_backend.create_state_machine(name="bounded", definition=PASS_DEFINITION, roleArn=ROLE)
    threads_before = len(TMP_THREADS)
    executions = [start(parser_backend, sm.arn, f"e{i}", "{}") for i in range(30)]
    _wait_finished(executions)
    assert len(sm.executions) == 30
    assert len(TMP_THREADS) - threads_before >= 30
    assert not any(t.is_alive() for t in TMP_THREADS[threads_before:])

    dropped = moto_patches.prune_executions(sm, keep=10)
    assert dropped == 20
    assert [e.name for e in sm.executions] == [f"e{i}" for i in range(20, 30)]
    assert all(t.is_alive() for t in TMP_THREADS)


def test_prune_keeps_running_executions(parser_backend):
    from types import SimpleNamespace

    running = [SimpleNamespace(exec_status="RUNNING", status="RUNNING") for _ in range(5)]
    done = [SimpleNamespace(exec_status="SUCCEEDED", status="SUCCEEDED") for _ in range(20)]
    sm = SimpleNamespace(executions=running + done)
    assert moto_patches.prune_executions(sm, keep=3) == 17
    assert sm.executions[:5] == running and len(sm.executions) == 8


def test_configure_reads_option_then_environment(monkeypatch):
    saved = dict(moto_patches._settings)
    try:
        monkeypatch.setenv("SWLAB_SFN_KEEP_EXECUTIONS", "77")
        moto_patches.configure({"sfn_keep_executions": 5})
        assert moto_patches._settings["keep_executions"] == 5
        moto_patches.configure({})
        assert moto_patches._settings["keep_executions"] == 77
        with pytest.raises(ValueError):
            moto_patches.configure({"sfn_keep_executions": -1})
    finally:
        moto_patches._settings.update(saved)


def test_moto_describe_execution_still_returns_string_output_unencoded():
    import boto3
    from moto import mock_aws
    from moto.stepfunctions.responses import StepFunctionResponse

    if moto_patches._applied:
        pytest.skip("patches applied in this process")
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "big", "End": True}}})
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(name="s", definition=definition, roleArn=ROLE)["stateMachineArn"]
        execution_arn = sfn.start_execution(stateMachineArn=arn, name="x")["executionArn"]
        deadline = time.monotonic() + 10
        while (desc := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert StepFunctionResponse.describe_execution is moto_patches.ORIGINALS.get(
        "describe_execution", StepFunctionResponse.describe_execution
    )
    assert desc["output"] == "big"  # AWS: '"big"'


def test_moto_still_refuses_states_errors_out_of_parallel_map_and_fail():
    import importlib

    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName

    if moto_patches._applied:
        pytest.skip("patches applied in this process")
    with pytest.raises(ValueError, match="MUST NOT begin with the prefix 'States.'"):
        CustomErrorName("States.Timeout")
    for name in moto_patches._STATES_ERROR_USERS:
        assert importlib.import_module(name).CustomErrorName is CustomErrorName, name


def test_error_name_for_builds_catchable_states_errors():
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    assert isinstance(moto_patches.error_name_for("States.Timeout"), StatesErrorName)
    assert moto_patches.error_name_for("States.Timeout").error_name == "States.Timeout"
    assert moto_patches.error_name_for("ProbeError").error_name == "ProbeError"


def test_moto_still_parses_jsonpath_on_every_evaluation():
    import importlib

    if moto_patches._applied:
        pytest.skip("patches applied in this process")
    for module_name, source in moto_patches._JSONPATH_USERS.items():
        module = importlib.import_module(module_name)
        assert module.parse is importlib.import_module(source).parse, module_name
        assert module.parse("$.Payload") is not module.parse("$.Payload")  # a new parser each time


def test_moto_still_keeps_live_history_and_compaction_preserves_it(parser_backend):
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start = _original("start_execution", StepFunctionsParserBackend.start_execution)
    definition = json.dumps(
        {
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Result": [1, 2], "End": True}},
        }
    )
    sm = parser_backend.create_state_machine(name="history", definition=definition, roleArn=ROLE)
    execution = start(parser_backend, sm.arn, "h", '{"in": 1}')
    _wait_finished([execution])
    if not moto_patches._applied:
        assert type(execution.exec_worker.env.event_manager) is EventManager
    history = execution.to_history_output()["events"]
    assert [e["type"] for e in history][0] == "ExecutionStarted" and len(history) >= 6

    moto_patches.compact_history(execution)
    assert isinstance(execution.exec_worker.env.event_manager, moto_patches.CompactEventHistory)
    assert execution.to_history_output()["events"] == history
    assert execution.exec_worker.env.event_manager.size_bytes < 2000


TABLE_SPEC = {
    "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def test_moto_dynamodb_still_answers_a_constant_consumed_capacity(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName="t", **TABLE_SPEC)
        big = {"k": {"S": "a"}, "body": {"S": "x" * 5000}}  # ~5 KB: 5 write units, 2 consistent read units on AWS
        put = ddb.put_item(TableName="t", Item=big, ReturnConsumedCapacity="TOTAL")
        update = ddb.update_item(
            TableName="t",
            Key={"k": {"S": "a"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )  # capacity not asked for
        get = ddb.get_item(TableName="t", Key={"k": {"S": "a"}}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert put["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert update["ConsumedCapacity"]["CapacityUnits"] == 0.5
    assert get["ConsumedCapacity"]["CapacityUnits"] == 0.5


def test_consumed_capacity_units_follow_aws_rules():
    units = moto_patches.consumed_capacity_units
    assert units("put_item", 10) == units("update_item", 1024) == 1.0 and units("put_item", 1025) == 2.0
    assert units("get_item", 0) == 0.5 and units("get_item", 4096, consistent_read=True) == 1.0
    assert units("get_item", 4097) == 1.0 and units("get_item", 4097, consistent_read=True) == 2.0


def test_local_cloud_reports_consumed_capacity_as_aws_does(aws):
    ddb = aws("dynamodb")
    name = f"capacity-{time.monotonic_ns()}"
    ddb.create_table(TableName=name, **TABLE_SPEC)
    try:
        item = {"k": {"S": "a"}, "body": {"S": "x" * 5000}}  # 1 + 1 + 4 + 5000 bytes: 5 write units
        assert ddb.put_item(TableName=name, Item=item, ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"] == {
            "TableName": name,
            "CapacityUnits": 5.0,
        }
        update = ddb.update_item(
            TableName=name,
            Key={"k": {"S": "a"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )
        assert "ConsumedCapacity" not in update  # not asked for
        shrink = ddb.update_item(
            TableName=name, Key={"k": {"S": "a"}}, UpdateExpression="REMOVE body", ReturnConsumedCapacity="TOTAL"
        )
        assert shrink["ConsumedCapacity"]["CapacityUnits"] == 5.0  # the larger of before and after
        ddb.put_item(TableName=name, Item=item)
        key = {"k": {"S": "a"}}
        assert (
            ddb.get_item(TableName=name, Key=key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")[
                "ConsumedCapacity"
            ]["CapacityUnits"]
            == 2.0
        )
        assert (
            ddb.get_item(TableName=name, Key=key, ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"]["CapacityUnits"]
            == 1.0
        )
        assert ddb.get_item(TableName=name, Key={"k": {"S": "none"}}, ReturnConsumedCapacity="INDEXES")[
            "ConsumedCapacity"
        ] == {"TableName": name, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.5}}
        assert (
            ddb.delete_item(TableName=name, Key=key, ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"][
                "CapacityUnits"
            ]
            == 5.0
        )
    finally:
        ddb.delete_table(TableName=name)


# -- Step Functions patches (swlab.localcloud.moto_patches_sfn) -----------------------------------


def test_moto_sfn_integration_still_skips_boto_shape_mapping():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    task = StateTaskServiceSfn.__new__(StateTaskServiceSfn)
    task.resource = type("R", (), {"api_action": "startExecution"})()
    parameters = {"StateMachineArn": "arn", "Input": {"a": 1}}
    _original("sfn._normalise_parameters", StateTaskServiceSfn._normalise_parameters)(task, parameters)
    assert parameters == {"StateMachineArn": "arn", "Input": '{"a":1}'}  # boto wants stateMachineArn
    response = {"executionArn": "arn"}
    _original("sfn._normalise_response", StateTaskServiceSfn._normalise_response)(task, response)
    assert response == {"executionArn": "arn"}  # AWS: ExecutionArn


def test_moto_intrinsic_lexer_still_drops_a_second_bracket():
    from moto.stepfunctions.parser.asl.parse.intrinsic import intrinsic_parser

    lexer_class = _original("ASLIntrinsicLexer", intrinsic_parser.ASLIntrinsicLexer)
    from antlr4 import InputStream

    texts = [t.text for t in lexer_class(InputStream("States.Format('{}', $['a-b']['c'])")).getAllTokens()]
    assert "$['a-b']" in texts and "$['a-b']['c']" not in texts


def test_bracket_path_lexer_reads_whole_paths():
    from antlr4 import InputStream

    lexer = moto_patches.moto_patches_sfn.bracket_path_lexer()
    for src, path in [
        ("States.Format('{}', $['a-b']['c'])", "$['a-b']['c']"),
        ("States.Array($.a[0][1].b)", "$.a[0][1].b"),
        ("States.Format('{}', $$.Execution['Input']['x'])", "$$.Execution['Input']['x']"),
        ("States.Format('{}', $['a']['x]'])", "$['a']['x]']"),
    ]:
        assert path in [t.text for t in lexer(InputStream(src)).getAllTokens()], src


def test_moto_still_refuses_states_names_in_error_equals():
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.parse import preprocessor

    assert _original("preprocessor.CustomErrorName", preprocessor.CustomErrorName) is CustomErrorName
    with pytest.raises(ValueError):
        CustomErrorName("States.Http.StatusCode.404")
    assert moto_patches.error_name_for("States.Http.StatusCode.404").error_name == "States.Http.StatusCode.404"


def _failure_env():
    from types import SimpleNamespace

    return SimpleNamespace(next_state_name="T", event_history_context=SimpleNamespace(source_event_id=1))


def test_moto_lambda_task_still_names_service_errors_exception():
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils import (
        LambdaFunctionErrorException,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

    from_error = _original("lambda._from_error", StateTaskLambda._from_error)
    task = StateTaskLambda.__new__(StateTaskLambda)
    throttled = ClientError(
        {
            "Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."},
            "ResponseMetadata": {"HTTPStatusCode": 429},
        },
        "Invoke",
    )
    assert from_error(task, _failure_env(), throttled).error_name.error_name == "Exception"  # AWS: Lambda.TooMany...
    no_type = LambdaFunctionErrorException("Unhandled", '{"errorMessage":"x"}')
    assert from_error(task, _failure_env(), no_type).error_name.error_name == "Exception"  # AWS: Lambda.Unknown


def test_moto_dynamodb_task_still_needs_a_request_id():
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
        StateTaskServiceDynamoDB,
    )

    cause_of = _original(
        "dynamodb._error_cause_from_client_error", StateTaskServiceDynamoDB._error_cause_from_client_error
    )
    server_error = ClientError(
        {"Error": {"Code": "500", "Message": "<html>"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "DeleteItem"
    )
    with pytest.raises(KeyError):
        cause_of(server_error)


def test_moto_still_scans_its_package_for_every_routed_request(monkeypatch):
    """moto_patches_s3: ``list_of_moto_modules`` lists moto's directory on every call, and the
    dispatcher asks it for every request it routes."""
    import inspect
    import os

    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    scan = _original("list_of_moto_modules", backends.list_of_moto_modules)
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or real_listdir(path))
    assert "s3" in list(scan()) and "s3" in list(scan())
    assert len(listed) == 2
    assert "backends.list_of_moto_modules()" in inspect.getsource(DomainDispatcherApplication.get_backend_for_host)


def test_the_cached_moto_module_list_is_the_scanned_one(monkeypatch):
    from moto import backends

    from swlab.localcloud import moto_patches_s3

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    originals: dict = {}
    moto_patches_s3.apply(originals)
    assert list(backends.list_of_moto_modules()) == list(originals["list_of_moto_modules"]())


def test_moto_create_rest_api_still_drops_binary_media_types():
    import inspect

    from moto.apigateway.responses import APIGatewayResponse

    original = _original("apigateway.create_rest_api", APIGatewayResponse.create_rest_api)
    assert "binaryMediaTypes" not in inspect.getsource(original)


def test_moto_still_adds_a_binary_media_type_from_the_value_not_the_path():
    from moto.apigateway.models import RestAPI

    api = RestAPI("a1", "123456789012", "us-east-1", "n", "")
    original = _original("apigateway.RestAPI.apply_patch_operations", RestAPI.apply_patch_operations)
    original(api, [{"op": "add", "path": "/binaryMediaTypes/image~1png"}])
    assert "image/png" not in api.binaryMediaTypes
