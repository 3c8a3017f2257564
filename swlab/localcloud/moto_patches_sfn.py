"""The Step Functions patches to moto 5.2.5's interpreter that make Task results and
errors read as AWS's (issue 10). Applied by :func:`swlab.localcloud.moto_patches.apply`;
same rules as there: each patch names the defect, keeps moto's original in
``originals`` and has a sentinel test in tests/functional/test_moto_patches.py.

==========================  ===============================================================
patch                       why
==========================  ===============================================================
nested executions           ``states:startExecution`` (and ``.sync``, ``.sync:2``) fails with
                            States.Runtime ``'StateMachineArn'``: moto dropped the step that
                            maps the ASL's PascalCase parameters onto boto's shape (boto wants
                            ``stateMachineArn``) and the response back. Both mappings are
                            restored for this integration; dates become epoch milliseconds,
                            as AWS gives them (``.sync``: Output a JSON string, ``.sync:2``:
                            parsed JSON).
bracket paths in intrinsics the intrinsic-function lexer takes one ``[...]`` per path segment:
                            ``States.Format('{}', $['a-b']['c'])`` reads ``$['a-b']`` and drops
                            ``['c']``. A path token is extended over the brackets that follow.
States.* in ErrorEquals     a ``States.`` name moto does not list (``States.Http.StatusCode.404``
                            and the like, which AWS documents for Retry/Catch) is refused at
                            CreateStateMachine (``Custom Error Names MUST NOT begin with the
                            prefix 'States.'``). Accepted and matched by name.
Lambda error names          plain-ARN Lambda tasks name every Lambda service error
                            ``Exception`` (AWS: ``Lambda.TooManyRequestsException`` ...), and a
                            function error payload without ``errorType`` is ``Exception``
                            (AWS: ``Lambda.Unknown``, "The cause could not be determined ...").
DynamoDB error causes       an error response without a request id (a 5xx) crashes the error
                            mapping (uncatchable States.Runtime ``KeyError('RequestId')``).
                            The cause is AWS's format; a moto server failure (HTML page) is
                            reported as DynamoDB's ``InternalServerError``.
==========================  ===============================================================
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any, Callable

UNKNOWN_CAUSE = "The cause could not be determined because Lambda did not return an error type. Returned payload: "

_SFN_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn"
_LAMBDA_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda"
_LAMBDA_SERVICE_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda"
_DYNAMODB_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
_PREPROCESSOR = "moto.stepfunctions.parser.asl.parse.preprocessor"


def apply(originals: dict[str, Callable[..., Any]]) -> None:
    """Apply the Step Functions patches once; moto's originals go into ``originals``."""
    _patch_nested_executions(originals)
    _patch_intrinsic_bracket_paths(originals)
    _patch_error_equals_states_names(originals)
    _patch_lambda_error_names(originals)
    _patch_dynamodb_error_causes(originals)


def error_name_for(error_name: str | None = None) -> Any:
    """A ``States.*`` name as moto's StatesErrorName (catchable by Catch/Retry), any other as
    CustomErrorName: what moto's ``CustomErrorName(name)`` should have built. A ``States.``
    name moto does not know becomes a plain ErrorName, matched by equality."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    if error_name and error_name.startswith("States."):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return ErrorName(error_name=error_name)
    return CustomErrorName(error_name)


# -- nested executions (states:startExecution) ------------------------------------------------


@functools.lru_cache(maxsize=8)
def _operations(service: str) -> tuple[Any, dict[str, str]]:
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return model, {xform_name(name): name for name in model.operation_names}


def operation_shape(service: str, action: str, which: str) -> Any:
    """The botocore ``input``/``output`` shape of ``service``'s ``action`` (snake_case), or None."""
    model, names = _operations(service)
    name = names.get(action)
    return getattr(model.operation_model(name), f"{which}_shape") if name else None


def epoch_millis(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime.datetime) else value


def _patch_nested_executions(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5: ``StateTaskService._normalise_parameters``/``_normalise_response`` are no-ops
    (LocalStack's originals map the request onto the boto shape and the response back to
    PascalCase); the Step Functions integration sends ``StateMachineArn`` to boto and fails."""
    import importlib

    sfn_task = importlib.import_module(_SFN_TASK).StateTaskServiceSfn
    original_parameters = sfn_task._normalise_parameters
    originals["sfn._normalise_parameters"] = original_parameters
    originals["sfn._normalise_response"] = sfn_task._normalise_response

    def _normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        original_parameters(self, parameters, boto_service_name, service_action_name)
        shape = operation_shape("stepfunctions", self._get_boto_service_action(service_action_name), "input")
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def _normalise_response(self, response, boto_service_name=None, service_action_name=None):
        shape = operation_shape("stepfunctions", self._get_boto_service_action(service_action_name), "output")
        if shape is not None and isinstance(response, dict):
            self._from_boto_response(response, shape)
            for key, value in response.items():
                response[key] = epoch_millis(value)

    sfn_task._normalise_parameters = _normalise_parameters
    sfn_task._normalise_response = _normalise_response


# -- JSONPath with brackets inside intrinsic functions -------------------------------------------


def _close_bracket(text: str, i: int) -> int:
    """Index of the ``]`` closing the ``[`` at ``text[i]`` (quotes and nesting respected), or -1."""
    depth, quote, j = 0, "", i
    while j < len(text):
        c = text[j]
        if quote:
            if c == "\\":
                j += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def json_path_end(text: str, i: int) -> int:
    """Where a JSONPath continuing at ``text[i]`` with ``[...]`` segments (and ``.name`` after them) ends."""
    if i >= len(text) or text[i] != "[":
        return i
    while i < len(text):
        if text[i] == "[":
            close = _close_bracket(text, i)
            if close < 0:
                break
            i = close + 1
        elif text[i] == "." and i + 1 < len(text) and text[i + 1] not in ".,) \t\r\n":
            i += 1
            while i < len(text) and text[i] not in ".[,) \t\r\n":
                i += 1
        else:
            break
    return i


def bracket_path_lexer() -> type:
    """moto's intrinsic-function lexer, with path tokens extended over consecutive ``[...]``."""
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicLexer import ASLIntrinsicLexer

    path_types = {
        ASLIntrinsicLexer.JSON_PATH_STRING,
        ASLIntrinsicLexer.CONTEXT_PATH_STRING,
        ASLIntrinsicLexer.STRING_VARIABLE,
    }

    class BracketPathLexer(ASLIntrinsicLexer):
        def nextToken(self):  # noqa: N802 - ANTLR's name
            token = super().nextToken()
            if token.type in path_types:
                text = self._input.strdata
                end = json_path_end(text, token.stop + 1)
                if end > token.stop + 1:
                    self._input.seek(end)
                    self._interp.column += end - token.stop - 1
                    token.stop = end - 1
                    token.text = text[token.start : end]
            return token

    return BracketPathLexer


def _patch_intrinsic_bracket_paths(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5's ASLIntrinsicLexer: ``JSON_PATH_BODY`` allows one bracket per segment."""
    from moto.stepfunctions.parser.asl.parse.intrinsic import intrinsic_parser

    originals["ASLIntrinsicLexer"] = intrinsic_parser.ASLIntrinsicLexer
    intrinsic_parser.ASLIntrinsicLexer = bracket_path_lexer()


# -- States.* names in ErrorEquals ----------------------------------------------------------------


def _patch_error_equals_states_names(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5: the preprocessor builds ErrorEquals names not in its enum as ``CustomErrorName``,
    which raises ValueError for a ``States.`` prefix (the definition is refused)."""
    import importlib

    preprocessor = importlib.import_module(_PREPROCESSOR)
    originals["preprocessor.CustomErrorName"] = preprocessor.CustomErrorName
    preprocessor.CustomErrorName = error_name_for


# -- Lambda error names ----------------------------------------------------------------------------


def service_error_cause(service: str, error: Any) -> tuple[str, str]:
    """AWS's cause text for a service ``ClientError`` (Java SDK style); never fails on a missing field."""
    response = getattr(error, "response", {}) or {}
    meta = response.get("ResponseMetadata") or {}
    code = (response.get("Error") or {}).get("Code") or "ServiceException"
    message = (response.get("Error") or {}).get("Message") or ""
    request_id = meta.get("RequestId") or (meta.get("HTTPHeaders") or {}).get("x-amzn-requestid", "")
    details = "; ".join(
        [
            f"Service: {service}",
            f"Status Code: {meta.get('HTTPStatusCode', 500)}",
            f"Error Code: {code}",
            f"Request ID: {request_id}",
            "Proxy: null",
        ]
    )
    return code, f"{message} ({details})"


def _payload_error_type(payload: str) -> str | None:
    try:
        found = json.loads(payload)
    except ValueError:
        return None
    error_type = found.get("errorType") if isinstance(found, dict) else None
    return error_type if isinstance(error_type, str) and error_type else None


def _patch_lambda_error_names(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5: ``StateTaskLambda._from_error`` names a Lambda ClientError ``Exception``; both
    Lambda task forms name a function error without ``errorType`` ``Exception``."""
    import importlib

    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import (
        HistoryEventType,
        LambdaFunctionFailedEventDetails,
        TaskFailedEventDetails,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils import (
        LambdaFunctionErrorException,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    legacy = importlib.import_module(_LAMBDA_TASK).StateTaskLambda
    service = importlib.import_module(_LAMBDA_SERVICE_TASK).StateTaskServiceLambda

    def error_and_cause(ex: Exception) -> tuple[str, str] | None:
        if isinstance(ex, LambdaFunctionErrorException) and _payload_error_type(ex.payload) is None:
            return "Lambda.Unknown", UNKNOWN_CAUSE + ex.payload
        if isinstance(ex, ClientError):
            code, cause = service_error_cause("AWSLambda", ex)
            return f"Lambda.{code}", cause
        return None

    def wrap(task_class: type, key: str, legacy_events: bool) -> None:
        original = task_class._from_error
        originals[key] = original

        @functools.wraps(original)
        def _from_error(self, env, ex):
            found = error_and_cause(ex)
            if found is None:
                return original(self, env, ex)
            error, cause = found
            if legacy_events:
                return FailureEvent(
                    env=env,
                    error_name=CustomErrorName(error),
                    event_type=HistoryEventType.LambdaFunctionFailed,
                    event_details=EventDetails(
                        lambdaFunctionFailedEventDetails=(LambdaFunctionFailedEventDetails(error=error, cause=cause))
                    ),
                )
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error,
                        cause=cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )

        task_class._from_error = _from_error

    wrap(legacy, "lambda._from_error", legacy_events=True)
    wrap(service, "lambda_service._from_error", legacy_events=False)


# -- DynamoDB error causes ------------------------------------------------------------------------


def _patch_dynamodb_error_causes(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5: ``StateTaskServiceDynamoDB._error_cause_from_client_error`` reads
    ``ResponseMetadata['RequestId']``, absent from a 5xx answer (KeyError → States.Runtime)."""
    import importlib

    task = importlib.import_module(_DYNAMODB_TASK).StateTaskServiceDynamoDB
    originals["dynamodb._error_cause_from_client_error"] = task._error_cause_from_client_error

    def _error_cause_from_client_error(client_error):
        response = client_error.response
        if response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500 and not response.get("Error", {}).get(
            "Message", ""
        ).startswith("{"):
            # moto's server failed on the request (an HTML error page): answer DynamoDB's 500 shape.
            response = {**response, "Error": {"Code": "InternalServerError", "Message": "Internal server error"}}
            client_error = type(client_error)(response, "DynamoDB")
        code, cause = service_error_cause("AmazonDynamoDBv2", client_error)
        return f"DynamoDB.{code}", cause

    task._error_cause_from_client_error = staticmethod(_error_cause_from_client_error)
