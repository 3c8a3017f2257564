"""Least-privilege IAM policy documents for the lab's roles (pure: builds dicts, calls nothing).

One role per function, from the ``access`` block of its ``function.json``:

==============  ===================================================  ==========================
access key      meaning                                              actions granted
==============  ===================================================  ==========================
``s3_read``     key patterns in the stack bucket the function reads  s3:GetObject (+ s3:ListBucket
                                                                     on the bucket, so a missing key
                                                                     is a 404, not a 403)
``s3_write``    key patterns it writes                               s3:PutObject
``s3_delete``   key patterns it deletes                              s3:DeleteObject
``dynamodb``    DynamoDB actions on the stack table                  dynamodb:<Action>
==============  ===================================================  ==========================

Every function role may also write its own log group ``/aws/lambda/<stack>-<fn>``
and nothing else. The state machine role may invoke the stack's Workflow 2
functions, GetItem on the table and set up log delivery (those CloudWatch Logs
delivery actions only accept ``"Resource": "*"`` on AWS). The API Gateway role
may start executions of the one state machine. The bucket must use SSE-S3
(no KMS permissions are granted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

VERSION = "2012-10-17"
ACCESS_KEYS: dict[str, str | None] = {
    "s3_read": "s3:GetObject",
    "s3_write": "s3:PutObject",
    "s3_delete": "s3:DeleteObject",
    "dynamodb": None,
    "states_start": "states:StartExecution",  # state machines of the stack, by name suffix ("classify")
}
DYNAMODB_ACTIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem"})
LOG_DELIVERY_ACTIONS = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
SERVICE_PRINCIPALS = {
    "lambda": "lambda.amazonaws.com",
    "states": "states.amazonaws.com",
    "apigateway": "apigateway.amazonaws.com",
}


class AccessError(ValueError):
    """A function.json access block the builder will not turn into a policy."""


@dataclass(frozen=True)
class StackResources:
    """Names and ARNs of one deployed stack (what the policies may name)."""

    stack: str
    account_id: str
    region: str
    bucket: str
    table: str
    partition: str = "aws"

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def table_arn(self) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.account_id}:table/{self.table}"

    def function_name(self, function: str) -> str:
        return f"{self.stack}-{function}"

    def function_arn(self, function: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{self.function_name(function)}"

    def log_group_arn(self, function: str) -> str:
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:/aws/lambda/{self.function_name(function)}"

    def state_machine_arn(self, name: str) -> str:
        return f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:{name}"


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def trust_policy(service: str) -> dict[str, Any]:
    """Who may assume the role: ``lambda``, ``states`` or ``apigateway``."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": SERVICE_PRINCIPALS[service]}, "Action": "sts:AssumeRole"}
        ],
    }


def check_access(access: Mapping[str, Any]) -> dict[str, list[str]]:
    """Validate an access block: known keys, relative key patterns, allowed DynamoDB actions."""
    unknown = set(access) - set(ACCESS_KEYS)
    if unknown:
        raise AccessError(f"unknown access keys {sorted(unknown)}; known: {sorted(ACCESS_KEYS)}")
    checked: dict[str, list[str]] = {}
    for key, values in access.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise AccessError(f"access.{key} must be a list of non-empty strings")
        if key == "dynamodb" and set(values) - DYNAMODB_ACTIONS:
            raise AccessError(f"access.dynamodb allows {sorted(DYNAMODB_ACTIONS)}, got {values}")
        if key == "states_start" and any(not v.replace("-", "").isalnum() for v in values):
            raise AccessError(f"access.states_start names state machines of the stack (e.g. 'classify'), got {values}")
        if key not in ("dynamodb", "states_start") and any(v.startswith("/") or v.strip("*") == "" for v in values):
            raise AccessError(f"access.{key} needs key patterns under a prefix (e.g. 'raw/*'), got {values}")
        checked[key] = list(values)
    return checked


def function_policy(function: str, access: Mapping[str, Any], res: StackResources) -> dict[str, Any]:
    """The inline policy of one function's role."""
    access = check_access(access)
    log_group = res.log_group_arn(function)
    statements = [
        _statement(
            "OwnLogGroup",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group, f"{log_group}:*"],
        )
    ]
    for key in ("s3_read", "s3_write", "s3_delete"):
        if access.get(key):
            sid = {"s3_read": "ReadObjects", "s3_write": "WriteObjects", "s3_delete": "DeleteObjects"}[key]
            statements.append(_statement(sid, [str(ACCESS_KEYS[key])], [f"{res.bucket_arn}/{p}" for p in access[key]]))
    if access.get("s3_read"):
        statements.append(_statement("ListBucketFor404", ["s3:ListBucket"], [res.bucket_arn]))
    if access.get("dynamodb"):
        statements.append(
            _statement("ImagesTable", [f"dynamodb:{a}" for a in sorted(set(access["dynamodb"]))], [res.table_arn])
        )
    if access.get("states_start"):
        machines = [res.state_machine_arn(f"{res.stack}-{name}") for name in access["states_start"]]
        statements.append(_statement("StartExecutions", ["states:StartExecution"], machines))
    return {"Version": VERSION, "Statement": statements}


def state_machine_policy(res: StackResources, functions: Iterable[str], log_delivery: bool = True) -> dict[str, Any]:
    """The state machine role: invoke exactly ``functions`` of this stack, read the table, deliver logs."""
    arns = sorted(res.function_arn(f) for f in set(functions))
    statements = [
        _statement("InvokeStackFunctions", ["lambda:InvokeFunction"], arns + [f"{arn}:*" for arn in arns]),
        _statement("ReadImageMetadata", ["dynamodb:GetItem"], [res.table_arn]),
    ]
    if log_delivery:
        statements.append(_statement("LogDelivery", LOG_DELIVERY_ACTIONS, ["*"]))
    return {"Version": VERSION, "Statement": statements}


def api_gateway_policy(state_machine_arn: str) -> dict[str, Any]:
    """The API Gateway role behind POST /classify: start executions of one state machine."""
    return {
        "Version": VERSION,
        "Statement": [
            _statement("StartClassify", ["states:StartExecution", "states:StartSyncExecution"], [state_machine_arn])
        ],
    }


def ingest_invoke_permission(
    res: StackResources, rest_api_id: str, function: str = "ingest", route: str = "POST/ingest", sid: str = "ingest"
) -> dict[str, str]:
    """Arguments for ``lambda.add_permission``: API Gateway may invoke ``function`` for one route
    (``POST/ingest``; ``GET/images/*``) of one API only."""
    return {
        "FunctionName": res.function_name(function),
        "StatementId": f"{res.stack}-apigateway-{sid}",
        "Action": "lambda:InvokeFunction",
        "Principal": SERVICE_PRINCIPALS["apigateway"],
        "SourceArn": f"arn:{res.partition}:execute-api:{res.region}:{res.account_id}:{rest_api_id}/*/{route}",
    }


def function_policies(lambdas_dir: Path, res: StackResources) -> dict[str, dict[str, Any]]:
    """{function: policy} for every ``lambdas/<fn>/function.json`` (folders starting with ``_`` skipped)."""
    policies = {}
    for config in sorted(Path(lambdas_dir).glob("*/function.json")):
        if not config.parent.name.startswith("_"):
            access = json.loads(config.read_text()).get("access", {})
            policies[config.parent.name] = function_policy(config.parent.name, access, res)
    return policies


def resources_named(policy: Mapping[str, Any]) -> set[str]:
    """Every Resource ARN a policy document names (for checks and reports)."""
    found: set[str] = set()
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        found.update([resources] if isinstance(resources, str) else resources)
    return found
