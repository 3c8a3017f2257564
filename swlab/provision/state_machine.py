"""The classification state machine ``<stack>-classify``: create, update (replace on a type change), delete.

Its definition is ``asl/classify.asl.json`` with the placeholders substituted
and checked (:mod:`swlab.provision.asl`); it logs everything to its log group
and runs under its own role (:mod:`roles`), which may invoke exactly the
stack's Workflow 2 functions.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping

from swlab.provision import asl
from swlab.provision.awserrors import error_code, retry, role_not_ready
from swlab.provision.changes import canonical, outcome
from swlab.provision.context import Clients, DeployContext, Found
from swlab.provision.functions import ROLE_WAIT_S, placeholder_values
from swlab.provision.iam import state_machine_policy
from swlab.provision.naming import Names, is_ours
from swlab.provision.options import MODEL_NAMES, DeployOptions, model_function
from swlab.provision.roles import ensure_role, stack_resources
from swlab.provision.storage import ensure_log_group
from swlab.settings import Settings


def state_machine_values(
    names: Names, functions: Mapping[str, Any], options: DeployOptions | None = None
) -> dict[str, str]:
    """Every value a definition may use: ``${FetchImageArn}`` for function ``fetch_image`` (and so on),
    ``${TableName}``, ``${BucketName}`` and the environment placeholders (``${Table}``, ``${Bucket}``, ...).
    A model's placeholder (``${AlexnetArn}``) names the function of the chosen inference variant
    (``alexnet_onnx`` for ``inference="onnx"``). A function with provisioned concurrency is invoked through
    its alias (``invoke_arn``, :mod:`swlab.provision.provisioned`), where its initialised environments are."""
    options = options or DeployOptions()
    values = {**placeholder_values(names), "TableName": names.table, "BucketName": names.bucket}
    values.update({asl.function_placeholder(name): fn.get("invoke_arn") or fn["arn"] for name, fn in functions.items()})
    for model in MODEL_NAMES:
        chosen = functions.get(model_function(options, model))
        if chosen is not None:
            values[asl.function_placeholder(model)] = chosen.get("invoke_arn") or chosen["arn"]
    return {k: v for k, v in values.items() if v}


def load_definition(path: Path, values: Mapping[str, str], preprocessing: str = "steps") -> str:
    """The ASL at ``path`` in its ``preprocessing`` variant (:func:`asl.variant`), with the placeholders it uses
    substituted and checked (:mod:`asl`), as JSON text."""
    used = asl.placeholders(asl.parse(path, preprocessing))
    chosen = {k: v for k, v in values.items() if k in used}
    return asl.render(asl.load_definition(path, chosen, preprocessing=preprocessing))


def logging_configuration(log_group_arn: str) -> dict[str, Any]:
    return {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": log_group_arn.removesuffix(":*") + ":*"}}],
    }


def deploy_state_machine(ctx: DeployContext, functions: Mapping[str, Any]) -> dict[str, Any]:
    """Log group, role and state machine; returns the state machine's outputs."""
    names = ctx.names
    log_group_arn = ensure_log_group(ctx, names.state_machine_log_group)
    values = state_machine_values(names, functions, ctx.options)
    definition = load_definition(ctx.options.asl_path, values, ctx.options.preprocessing)
    api_functions = (ctx.options.ingest_function, ctx.options.classifications_function)
    invoked = [name for name in functions if name not in api_functions]
    role_arn = ensure_role(
        ctx,
        names.states_role,
        "states",
        state_machine_policy(stack_resources(names), invoked),
        f"{names.stack}: state machine",
    )
    return ensure_state_machine(ctx, definition, role_arn, log_group_arn)


def ensure_state_machine(ctx: DeployContext, definition: str, role_arn: str, log_group_arn: str) -> dict[str, Any]:
    """Create or update the classification state machine (replaced when its type changes)."""
    sfn, names, report, tags = ctx.clients("stepfunctions"), ctx.names, ctx.report, ctx.tags
    name, workflow_type = names.state_machine, ctx.options.workflow_type
    arn = names.arn("states", f"stateMachine:{name}")
    logging = logging_configuration(log_group_arn)
    current = _describe_state_machine(sfn, arn)
    updated: list[str] = []
    if current is not None and current["type"] != workflow_type:
        sfn.delete_state_machine(stateMachineArn=arn)
        _wait_deleted(sfn, arn)
        updated = [f"type {current['type']} -> {workflow_type} (replaced)"]
        current = None
    if current is None:
        arn = retry(
            lambda: sfn.create_state_machine(
                name=name,
                definition=definition,
                roleArn=role_arn,
                type=workflow_type,
                loggingConfiguration=logging,
                tags=[{"key": k, "value": v} for k, v in tags.items()],
            )["stateMachineArn"],
            role_not_ready,
            ROLE_WAIT_S,
            f"IAM role of {name} to become usable by Step Functions",
            report.progress,
        )
        report.record("state machine", name, *outcome(not updated, updated))
    else:
        changes: dict[str, Any] = {}
        if canonical(current["definition"]) != canonical(definition):
            changes["definition"] = definition
        if current["roleArn"] != role_arn:
            changes["roleArn"] = role_arn
        if canonical(current.get("loggingConfiguration") or {}) != canonical(logging):
            changes["loggingConfiguration"] = logging
        if changes:
            retry(lambda: sfn.update_state_machine(stateMachineArn=arn, **changes), role_not_ready, ROLE_WAIT_S)
        have = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
        if any(have.get(k) != v for k, v in tags.items()):
            sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in tags.items()])
            changes["tags"] = tags
        report.record("state machine", name, *outcome(False, list(changes)))
    return {
        "name": name,
        "arn": arn,
        "type": workflow_type,
        "role_arn": role_arn,
        "log_group": names.state_machine_log_group,
    }


def _describe_state_machine(sfn: Any, arn: str) -> dict[str, Any] | None:
    try:
        desc = sfn.describe_state_machine(stateMachineArn=arn)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("StateMachineDoesNotExist", "ResourceNotFound"):
            return None
        raise
    return None if desc.get("status") == "DELETING" else desc


def _wait_deleted(sfn: Any, arn: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "StateMachineDoesNotExist":
                return
            raise
        time.sleep(2.0)
    raise TimeoutError(f"state machine {arn} still being deleted after {timeout_s:.0f} s")


def find_state_machines(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    sfn = clients("stepfunctions")
    for sm in (m for page in sfn.get_paginator("list_state_machines").paginate() for m in page["stateMachines"]):
        if not sm["name"].startswith(f"{names.stack}-"):
            continue
        tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=sm["stateMachineArn"])["tags"]}
        if sm["name"] == names.state_machine or is_ours(tags, names.stack):
            yield (
                "state machine",
                sm["name"],
                partial(sfn.delete_state_machine, stateMachineArn=sm["stateMachineArn"]),
            )
