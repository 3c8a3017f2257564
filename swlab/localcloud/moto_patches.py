"""Every change the local cloud makes to moto 5.2.5, in one place.

One module on purpose, though it is longer than the lab's others (~650 lines):
it is one concern — what we change in moto — and keeping every patch here,
each beside its reason, is what makes a moto upgrade reviewable (read this
file, run tests/functional/test_moto_patches.py) and none forgotten.

Each patch names the moto version and the reason (measured on this machine),
and has a test in tests/functional/test_moto_patches.py that fails when
upstream behaviour changes: the test calls moto's *original* function and
asserts it still misbehaves the way that made the patch necessary. When such a
test fails after a moto upgrade, delete the patch (and its test).

``apply()`` is idempotent and is called once by :meth:`LocalCloud.start`, in the
local cloud's own process (moto's backends are process-global).

Patches (moto 5.2.5):

==========================  ===============================================================
patch                       why
==========================  ===============================================================
execute_state_machine       Step Functions only records executions unless this user
                            config is on; on before any state machine is created.
unique execution names      ``start_execution`` without ``name``: the parser backend uses
                            ``None`` as the name (ARN ``...:None``), so the second such
                            call fails with ExecutionAlreadyExists. AWS generates a UUID.
StartSyncExecution          not implemented ("The start_sync_execution action has not been
                            implemented", HTTP 500). A shim over moto's own
                            ``SyncExecution``, Express state machines only, as on AWS.
definition parse cache      the ASL definition is parsed with ANTLR for every execution
                            (~25 ms for a 10-state machine). The parse tree is cached per
                            definition; each execution still builds fresh components.
Task client cache           a boto3 client is built for every Task (4-80 ms; boto3's
                            default session, not thread-safe) at ``http://localhost``
                            (resolves ::1 first; we listen on 127.0.0.1). One client per
                            (region, service), built under a lock, endpoint 127.0.0.1;
                            for Lambda, ``invoke`` is sent as plain HTTP (same request,
                            same route) instead of through botocore (~4.5 ms per call).
                            The local cloud's region's Lambda client is built at start, in the
                            background (:func:`prewarm_task_client`): the first Task of a fresh
                            local cloud waited 65-250 ms for it, which AWS does not show.
bounded executions          every finished execution stays in memory forever (with its
                            history). Only the last ``keep`` finished executions per state
                            machine are kept (default 1000, ~11 MB for 10-task chains: more
                            than five 180-request lab runs; ``SWLAB_SFN_KEEP_EXECUTIONS``
                            or ``apply(options={"sfn_keep_executions": N})``). Pruning runs
                            when the list exceeds ``keep`` by 10%.
JSONPath parse cache        every InputPath/OutputPath/ResultPath/``.$`` evaluation builds a
                            new jsonpath_ng parser (ply tables): ~0.75 ms each, several per
                            Task. Parsed expressions are cached per path string.
describe output encoding    ``DescribeExecution`` returns a string output raw (``big``
                            instead of ``"big"``, not JSON); it is JSON-encoded as AWS does.
States.* errors propagated  a Parallel branch (or Map iteration, or Fail state) ending with a
                            ``States.*`` error (States.Timeout, States.TaskFailed, ...) is
                            re-raised as ``CustomErrorName``, which refuses ``States.``
                            names: the execution dies with an uncatchable States.Runtime
                            ``ValueError``. They are re-raised as the States error itself.
compact finished history    a finished execution keeps its event history as live dicts
                            (~40 KB of ~50 KB for a 10-task chain, measured). On
                            termination the history is pickled and zlib-compressed
                            (1.3 KB for those 52 events; the whole execution then holds
                            ~11 KB) and decoded again when GetExecutionHistory asks.
TMP_THREADS pruning         moto appends every worker thread (one per execution, one per
                            program, one per Task) to a module list it never empties;
                            finished threads are dropped from it every 200 starts.
DynamoDB consumed capacity  ``ConsumedCapacity`` is a constant (PutItem 1, GetItem and
                            UpdateItem 0.5, whatever the item's size or ConsistentRead),
                            and UpdateItem returns it even when not asked. The lab's cost
                            model reads it (swl_log's ``aws_calls`` line), so it is computed
                            as AWS does: writes ceil(KB) (UpdateItem: of the larger of the
                            item before and after; PutItem: of the new item), reads
                            ceil(size / 4 KB), halved when not ConsistentRead; min 1 unit
                            (0.5 read); only when ``ReturnConsumedCapacity`` asks.
==========================  ===============================================================

The Step Functions patches that make Task results and errors read as AWS's (nested
executions, bracket paths in intrinsic functions, ``States.`` names in ErrorEquals, Lambda
and DynamoDB error names and causes) are in :mod:`swlab.localcloud.moto_patches_sfn`,
applied from :func:`apply` below; their originals are kept in ``ORIGINALS`` as well. The
request-path speed-ups (every request moto routes; S3's ranged GetObject reading only its range) are in
:mod:`swlab.localcloud.moto_patches_s3`, applied and recorded the same way, as are the API
Gateway control-plane fixes (binary media types) in :mod:`swlab.localcloud.moto_patches_apigw`.

Not patched, documented: a Task's ``TimeoutSeconds`` raises ``States.Timeout``
on time but the call it made keeps running in a background thread until it
returns. That matches AWS for Lambda (a Step Functions timeout does not stop the
function; the function's own timeout does), so the data plane's timeout bounds it.
EXPRESS state machines run like STANDARD ones (their executions are listable
and have a history, which AWS does not keep for Express), and their execution
ARNs use ``:execution:`` where AWS uses ``:express:``.
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import threading
import uuid
from typing import Any, Callable

from swlab.localcloud import moto_patches_apigw, moto_patches_s3, moto_patches_sfn
from swlab.localcloud.moto_patches_sfn import error_name_for

DEFAULT_KEEP_EXECUTIONS = 1000
_applied = False
_lock = threading.Lock()
_settings: dict[str, Any] = {"keep_executions": DEFAULT_KEEP_EXECUTIONS}
_starts = [0]
# moto's original functions, kept so tests can check upstream still needs each patch.
ORIGINALS: dict[str, Callable[..., Any]] = {}

# Modules that did ``from ...boto_client import boto_client_for`` (moto 5.2.5).
_CLIENT_USERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)


def apply(options: dict[str, Any] | None = None) -> None:
    """Apply every patch once (later calls only update the settings)."""
    global _applied
    configure(options)
    with _lock:
        if _applied:
            return
        _enable_state_machine_execution()
        _patch_start_execution()
        _patch_start_sync_execution()
        _patch_definition_parse_cache()
        _patch_task_client_cache()
        _patch_describe_execution_output()
        _patch_states_error_names()
        _patch_jsonpath_parse_cache()
        _patch_compact_finished_history()
        _patch_dynamodb_consumed_capacity()
        moto_patches_sfn.apply(ORIGINALS)
        moto_patches_s3.apply(ORIGINALS)
        moto_patches_apigw.apply(ORIGINALS)
        _applied = True


def configure(options: dict[str, Any] | None = None) -> None:
    """Settings: ``sfn_keep_executions`` (argument > ``SWLAB_SFN_KEEP_EXECUTIONS`` > 1000)."""
    keep = (options or {}).get("sfn_keep_executions") or os.environ.get("SWLAB_SFN_KEEP_EXECUTIONS")
    if keep is not None:
        if int(keep) < 1:
            raise ValueError(f"sfn_keep_executions must be >= 1, got {keep!r}")
        _settings["keep_executions"] = int(keep)


def _enable_state_machine_execution() -> None:
    """moto 5.2.5: Step Functions only *records* executions unless the user config
    ``stepfunctions.execute_state_machine`` is on. It must be on before any state
    machine is created (ones created earlier are invisible to the interpreter)."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


# -- execution names, bounded executions, TMP_THREADS -------------------------------


def _patch_start_execution() -> None:
    """moto 5.2.5: ``StepFunctionsParserBackend.start_execution(name=None)`` names the
    execution ``None``, so the second unnamed start fails with ExecutionAlreadyExists.
    Also the place where finished executions and finished worker threads are pruned."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution
    ORIGINALS["start_execution"] = original

    @functools.wraps(original)
    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        execution = original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)
        prune_executions(self.describe_state_machine(state_machine_arn))
        return execution

    StepFunctionsParserBackend.start_execution = start_execution


def prune_executions(state_machine: Any, keep: int | None = None) -> int:
    """Drop the oldest finished executions beyond ``keep``; returns how many were dropped.

    Runs when the list exceeds ``keep`` by 10% (amortised), under a lock; the list
    is replaced in place by one slice assignment, so concurrent readers never fail.
    """
    keep = keep or _settings["keep_executions"]
    executions = state_machine.executions
    _starts[0] += 1
    if _starts[0] % 200 == 0:
        with _lock:
            _prune_finished_threads()
    if len(executions) <= keep + max(1, keep // 10):
        return 0
    with _lock:
        _prune_finished_threads()
        finished = [e for e in executions if e.exec_status is not None and e.status != "RUNNING"]
        drop = {id(e) for e in finished[: max(0, len(finished) - keep)]}
        if drop:
            executions[:] = [e for e in executions if id(e) not in drop]
    return len(drop)


def _prune_finished_threads() -> None:
    """moto 5.2.5 appends every worker thread to ``parser.utils.TMP_THREADS`` and never
    removes one; keep only the live ones (same list object: modules imported it by name)."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    TMP_THREADS[:] = [t for t in TMP_THREADS if t.is_alive()]


# -- StartSyncExecution ---------------------------------------------------------------


def _patch_start_sync_execution() -> None:
    """moto 5.2.5 has no ``start_sync_execution`` action (HTTP 500, NotImplementedError).
    Shim: run moto's own ``SyncExecution`` in the request thread and answer AWS's shape."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    ORIGINALS["has_start_sync_execution"] = lambda: hasattr(StepFunctionResponse, "start_sync_execution")
    StepFunctionsParserBackend.start_sync_execution = _backend_start_sync_execution
    StepFunctionResponse.start_sync_execution = _response_start_sync_execution


def _make_state_machine_type_not_supported(message: str) -> Exception:
    from moto.core.exceptions import AWSError

    return AWSError(message, exception_type="StateMachineTypeNotSupported", status=400)


def _backend_start_sync_execution(
    self, state_machine_arn: str, name: str | None, execution_input: str | None, trace_header: str | None = None
) -> Any:
    import copy
    import json

    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.backend.execution import SyncExecution

    state_machine = self.describe_state_machine(state_machine_arn)
    if getattr(state_machine, "type", "STANDARD") != "EXPRESS":
        raise _make_state_machine_type_not_supported(
            "This operation is only supported for state machines of type EXPRESS"
        )
    name = name or str(uuid.uuid4())
    state_machine._handle_name_input_idempotency(name, execution_input)
    input_data = execution_input or "{}"
    try:
        json.loads(input_data)
    except ValueError as ex:
        raise InvalidExecutionInput(str(ex)) from None
    clone = copy.deepcopy(
        state_machine, {id(state_machine.executions): [], id(state_machine.backend): state_machine.backend}
    )
    execution = SyncExecution(
        name=name,
        sm_type=clone.sm_type,
        role_arn=clone.roleArn,
        exec_arn=f"arn:{self.partition}:states:{self.region_name}:{self.account_id}:execution:{state_machine.name}:{name}",
        account_id=self.account_id,
        region_name=self.region_name,
        state_machine=clone,
        start_date=datetime.datetime.now(tz=datetime.timezone.utc),
        cloud_watch_logging_session=None,
        input_data=input_data,
        trace_header=trace_header,
        activity_store={},
    )
    state_machine.executions.append(execution)
    execution.start()  # SyncExecutionWorker runs in this thread until the execution ends
    prune_executions(state_machine)
    return execution


def sync_execution_response(execution: Any) -> dict[str, Any]:
    """AWS's StartSyncExecution response for a finished moto ``SyncExecution``."""
    out = dict(execution.to_start_sync_execution_output())
    out.pop("inputDetails", None)
    out.pop("outputDetails", None)
    out["status"] = str(getattr(out["status"], "value", out["status"]))
    duration_ms = (execution.stop_date - execution.start_date).total_seconds() * 1000
    # Express bills per 100 ms (rounded up) and at least 64 MB.
    out["billingDetails"] = {
        "billedMemoryUsedInMB": 64,
        "billedDurationInMilliseconds": max(100, int(math.ceil(duration_ms / 100.0)) * 100),
    }
    return {k: v for k, v in out.items() if v is not None}


def _response_start_sync_execution(self) -> Any:
    from moto.core.responses import ActionResult

    execution = self.stepfunction_backend.start_sync_execution(
        self._get_param("stateMachineArn"),
        self._get_param("name"),
        self._get_param("input", if_none="{}"),
        self._get_param("traceHeader"),
    )
    return ActionResult(sync_execution_response(execution))


# -- definition parse cache -----------------------------------------------------------


@functools.lru_cache(maxsize=256)
def parse_tree(definition: str) -> Any:
    """The ANTLR parse tree of an ASL definition (read-only once built; shared)."""
    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException, SyntaxErrorListener

    listener = SyntaxErrorListener()
    parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.state_machine()
    if listener.errors:
        raise ASLParserException(errors=listener.errors)
    return tree


def build_program(definition: str) -> Any:
    """Fresh evaluation components from the cached tree (what moto's parse() returns first)."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    return Preprocessor().visit(parse_tree(definition))


def _patch_definition_parse_cache() -> None:
    """moto 5.2.5: ``ExecutionWorker._get_evaluation_entrypoint`` re-parses the definition
    with ANTLR for every execution (measured ~25 ms for 10 states, ~4 ms of it building
    components). Cache the tree; keep building components per execution (so no
    evaluation state can leak between executions)."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    ORIGINALS["_get_evaluation_entrypoint"] = ExecutionWorker._get_evaluation_entrypoint

    def _get_evaluation_entrypoint(self):
        return build_program(self._evaluation_details.state_machine_details.definition)

    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint


# -- Task client cache ----------------------------------------------------------------

_clients: dict[tuple[str, str, str], Any] = {}


def cached_boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """One boto3 client per (region, service, endpoint), shared by every Task (clients are
    thread-safe); same Config as moto's, a bigger connection pool, 127.0.0.1 endpoint."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    endpoint = "" if botocore_stubber.enabled else f"http://127.0.0.1:{moto_server_port()}"
    key = (region, service, endpoint)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            real = _new_client(region, service, endpoint)
            _clients[key] = LambdaInvokeClient(endpoint, real) if service == "lambda" and endpoint else real
        return _clients[key]


def prewarm_task_client(region: str) -> threading.Thread:
    """Build ``region``'s Lambda Task client now, in a daemon thread (after ``MOTO_PORT`` is set)."""

    def build() -> None:
        try:
            cached_boto_client_for(region, "lambda")
        except Exception:  # noqa: BLE001 — the first Task builds it then, as before
            pass

    thread = threading.Thread(target=build, name="sfn-task-client", daemon=True)
    thread.start()
    return thread


class LambdaInvokeClient:
    """``invoke`` as botocore's Lambda client answers it, over plain HTTP to our own endpoint.

    The Step Functions interpreter only calls ``invoke``; botocore spends ~4.5 ms per
    call on serialising, signing and parsing (measured: boto3 warm invoke p50 6.1 ms vs
    1.6 ms raw HTTP). Same wire request, same route into the Lambda data plane; errors
    raise botocore's ``ClientError`` with the service's code, as boto3 would. Any other
    operation goes to the real boto3 client.
    """

    def __init__(self, endpoint_url: str, real_client: Any) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint_url)
        self._host, self._port = parts.hostname, parts.port
        self._real = real_client
        self.meta = real_client.meta

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def invoke(
        self,
        FunctionName: str,
        Payload: Any = b"",
        InvocationType: str = "RequestResponse",  # noqa: N803
        Qualifier: str | None = None,
        ClientContext: str | None = None,
        LogType: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        import http.client
        import io
        from urllib.parse import quote

        path = f"/2015-03-31/functions/{quote(FunctionName, safe='')}/invocations"
        if Qualifier:
            path += f"?Qualifier={quote(Qualifier, safe='')}"
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Invocation-Type": InvocationType,
            "Authorization": "AWS4-HMAC-SHA256 Credential=ak/20200101/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host, Signature=0",
        }
        if ClientContext:
            headers["X-Amz-Client-Context"] = ClientContext
        if LogType:
            headers["X-Amz-Log-Type"] = LogType
        body = Payload.encode() if isinstance(Payload, str) else (Payload or b"")
        conn = http.client.HTTPConnection(self._host, self._port)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        meta = {
            "HTTPStatusCode": resp.status,
            "RequestId": resp.getheader("x-amzn-RequestId", ""),
            "HTTPHeaders": {k.lower(): v for k, v in resp.getheaders()},
        }
        if resp.status >= 300:
            raise _client_error(resp.status, resp.getheader("x-amzn-ErrorType"), data, meta)
        out: dict[str, Any] = {
            "StatusCode": resp.status,
            "Payload": io.BytesIO(data),
            "ResponseMetadata": meta,
            "ExecutedVersion": resp.getheader("X-Amz-Executed-Version", "$LATEST"),
        }
        for header, field_name in (("X-Amz-Function-Error", "FunctionError"), ("X-Amz-Log-Result", "LogResult")):
            if resp.getheader(header):
                out[field_name] = resp.getheader(header)
        return out


def _client_error(status: int, error_type: str | None, data: bytes, meta: dict) -> Exception:
    import json

    from botocore.exceptions import ClientError

    try:
        body = json.loads(data or b"{}")
    except ValueError:
        body = {}
    code = (error_type or body.get("__type") or body.get("Type") or str(status)).split(":")[0]
    message = body.get("message") or body.get("Message") or data.decode("utf-8", "replace")
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": meta}, "Invoke")


def _new_client(region: str, service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    config = Config(
        parameter_validation=False,
        retries={"max_attempts": 0, "total_max_attempts": 1},
        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        max_pool_connections=64,
    )
    session = boto3.session.Session(aws_access_key_id="ak", aws_secret_access_key="sk", region_name=region)
    return session.client(service, config=config, **({"endpoint_url": endpoint} if endpoint else {}))


def _patch_task_client_cache() -> None:
    """moto 5.2.5: ``boto_client_for`` builds a new boto3 client (default session) for
    every Task, at ``http://localhost:$MOTO_PORT``. Replace it in every module that
    imported it by name."""
    import importlib

    from moto.stepfunctions.parser.asl.utils import boto_client

    ORIGINALS["boto_client_for"] = boto_client.boto_client_for
    boto_client.boto_client_for = cached_boto_client_for
    for name in _CLIENT_USERS:
        module = importlib.import_module(name)
        if getattr(module, "boto_client_for", None) is ORIGINALS["boto_client_for"]:
            module.boto_client_for = cached_boto_client_for


# -- DescribeExecution output ---------------------------------------------------------


def _patch_describe_execution_output() -> None:
    """moto 5.2.5: ``StepFunctionResponse.describe_execution`` passes an output that is a
    Python ``str`` through unencoded (a state machine ending in ``"Result": "big"`` is
    described with ``output='big'``, not ``'"big"'``). Encode it as JSON, as AWS does."""
    import json

    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.describe_execution
    ORIGINALS["describe_execution"] = original

    @functools.wraps(original)
    def describe_execution(self):
        result = original(self)
        body = result.result
        if isinstance(body, dict) and isinstance(body.get("output"), str):
            execution = self.stepfunction_backend.describe_execution(body["executionArn"])
            if hasattr(execution, "to_describe_output") and isinstance(execution.output, str):
                body["output"] = json.dumps(execution.output)
        return result

    StepFunctionResponse.describe_execution = describe_execution


# -- States.* errors out of Parallel, Map and Fail ----------------------------------------

_STATES_ERROR_USERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker",
    "moto.stepfunctions.parser.asl.component.state.fail.state_fail",
)


def _patch_states_error_names() -> None:
    """moto 5.2.5: Parallel (``BranchesDecl``), Map (``IterationWorker``) and Fail states wrap
    the error name in ``CustomErrorName``, which raises ValueError for ``States.*`` names;
    a branch that times out (States.Timeout) then fails the whole execution with an
    uncatchable States.Runtime instead of a catchable States.Timeout."""
    import importlib

    for name in _STATES_ERROR_USERS:
        module = importlib.import_module(name)
        ORIGINALS.setdefault("CustomErrorName", module.CustomErrorName)
        module.CustomErrorName = error_name_for


# -- JSONPath parse cache -------------------------------------------------------------------

_JSONPATH_USERS = {
    "moto.stepfunctions.parser.asl.utils.json_path": "jsonpath_ng.ext",
    "moto.stepfunctions.parser.asl.component.common.path.result_path": "jsonpath_ng",
}


def _patch_jsonpath_parse_cache() -> None:
    """moto 5.2.5: ``extract_json`` and ``ResultPath`` call jsonpath_ng's ``parse(path)`` on
    every evaluation, which builds a ply lexer and parser each time (~0.75 ms measured,
    3-4 per Lambda Task). Parsed expressions are immutable (``find`` and
    ``update_or_create`` do not change them): cache them per path string."""
    import importlib

    for module_name, source in _JSONPATH_USERS.items():
        module = importlib.import_module(module_name)
        ORIGINALS[f"parse:{module_name}"] = module.parse
        module.parse = functools.lru_cache(maxsize=4096)(importlib.import_module(source).parse)


# -- compact history of finished executions ------------------------------------------------


class CompactEventHistory:
    """Stands in for a finished execution's ``EventManager``: the history pickled and
    compressed once, decoded per ``get_event_history()`` (a fresh list, as moto's copy)."""

    __slots__ = ("_blob",)

    def __init__(self, events: list) -> None:
        import pickle
        import zlib

        self._blob = zlib.compress(pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL), 1)

    def get_event_history(self) -> list:
        import pickle
        import zlib

        return pickle.loads(zlib.decompress(self._blob))

    @property
    def size_bytes(self) -> int:
        return len(self._blob)


def compact_history(execution: Any) -> None:
    """Replace a finished execution's live event history by a :class:`CompactEventHistory`."""
    env = getattr(execution.exec_worker, "env", None)
    manager = getattr(env, "event_manager", None)
    if manager is None or isinstance(manager, CompactEventHistory):
        return
    env.event_manager = CompactEventHistory(manager.get_event_history())
    # Evaluation leftovers no reader needs once the execution has ended.
    env.heap, env.stack, env._frames = {}, [], []


def _patch_compact_finished_history() -> None:
    """moto 5.2.5 keeps each finished execution's history as live event dicts (with their
    ``Environment``) for as long as the execution is kept: ~50 KB per 10-task execution."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated
    ORIGINALS["terminated"] = original

    @functools.wraps(original)
    def terminated(self) -> None:
        original(self)
        try:
            compact_history(self.execution)
        except Exception:  # noqa: BLE001 - never fail an execution over bookkeeping
            import logging

            logging.getLogger("swlab.localcloud").exception("compacting execution history failed")

    BaseExecutionWorkerCommunication.terminated = terminated


# -- DynamoDB consumed capacity -----------------------------------------------------------------

_WRITE_UNIT_BYTES, _READ_UNIT_BYTES = 1024, 4096


def consumed_capacity_units(operation: str, size_bytes: int, consistent_read: bool = False) -> float:
    """Capacity units AWS charges one single-item operation on an item of ``size_bytes`` (on-demand: request units)."""
    if operation == "get_item":
        units = max(1, math.ceil(size_bytes / _READ_UNIT_BYTES))
        return float(units) if consistent_read else units / 2
    return float(max(1, math.ceil(size_bytes / _WRITE_UNIT_BYTES)))


def _stored_size(handler: Any) -> int:
    try:
        item = handler.dynamodb_backend.get_item(handler.body["TableName"], handler.body["Key"])
    except Exception:  # noqa: BLE001 - the operation itself reports a bad table or key
        return 0
    return item.size() if item is not None else 0


def _request_item_size(handler: Any) -> int:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    return sum(bytesize(k) + DynamoType(v).size() for k, v in (handler.body.get("Item") or {}).items())


def _patch_dynamodb_consumed_capacity() -> None:
    """moto 5.2.5 answers a constant ``ConsumedCapacity`` per operation (UpdateItem: always, 0.5)."""
    from moto.dynamodb.responses import DynamoHandler

    for operation in ("put_item", "get_item", "update_item", "delete_item"):
        original = getattr(DynamoHandler, operation)
        ORIGINALS[f"dynamodb.{operation}"] = original
        setattr(DynamoHandler, operation, _with_consumed_capacity(operation, original))


def _with_consumed_capacity(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handler(self) -> Any:
        before = _stored_size(self) if operation in ("update_item", "delete_item") else 0
        result = original(self)
        body = result.result
        body.pop("ConsumedCapacity", None)
        mode = self.body.get("ReturnConsumedCapacity", "NONE")
        if mode in ("TOTAL", "INDEXES"):
            if operation == "put_item":
                size = _request_item_size(self)
            elif operation == "delete_item":
                size = before
            else:  # get_item reads what is stored; update_item bills the larger of before and after
                size = max(before, _stored_size(self))
            units = consumed_capacity_units(operation, size, bool(self.body.get("ConsistentRead")))
            body["ConsumedCapacity"] = {
                "TableName": self.body["TableName"],
                "CapacityUnits": units,
                **({"Table": {"CapacityUnits": units}} if mode == "INDEXES" else {}),
            }
        return result

    return handler
