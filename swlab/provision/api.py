"""The REST API ``<stack>-api`` with its role, API key and usage plan: create, update, delete.

Routes, all ``apiKeyRequired``:

* ``POST /ingest`` — ``AWS_PROXY`` integration with the ingest Lambda (plus the
  Lambda permission that lets API Gateway invoke it);
* ``POST /classify`` — ``AWS`` integration with Step Functions
  (``StartSyncExecution`` for EXPRESS, ``StartExecution`` for STANDARD), whose
  request template maps the body to ``{"input", "stateMachineArn", "name"}``,
  called with the API Gateway role's credentials; its body is validated first
  (model, validator and gateway responses: :mod:`swlab.provision.api_models`).
  For EXPRESS its 200 response template answers the execution's output object
  itself, or a FAILED execution's error with a non-2xx status
  (:data:`SYNC_RESPONSE_TEMPLATE`);
* ``POST /classifications`` and ``GET /images/{image_id}`` — the asynchronous
  API: ``AWS_PROXY`` to the ``classifications`` function (202 and a status URL,
  then the item's status and labels), when that function is deployed; the POST
  body is validated like ``/classify``'s.

A new deployment of stage ``lab`` is made only when something changed (or the
stage is missing); the usage plan throttles the stage (rate/burst).
Teardown deletes the usage plan, the key and the API (in that order).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Iterator, Mapping

from swlab.provision.api_models import ensure_request_validation, method_validation
from swlab.provision.awserrors import error_code, retry_throttled
from swlab.provision.changes import ChangeReport, outcome
from swlab.provision.context import Clients, DeployContext, Found
from swlab.provision.iam import api_gateway_policy, ingest_invoke_permission
from swlab.provision.naming import Names, invoke_url, is_ours
from swlab.provision.options import DeployOptions
from swlab.provision.roles import ensure_role, stack_resources
from swlab.settings import Settings

INGEST_PATH, CLASSIFY_PATH = "ingest", "classify"
CLASSIFICATIONS_PATH, IMAGE_PATH = "classifications", "images/{image_id}"

# POST /classify on an EXPRESS machine (StartSyncExecution answers 200 whatever the execution's status):
# the execution's output object itself on SUCCEEDED; else an error body with a non-2xx status
# (404 ImageNotFound, 400 InvalidInput, 500 any other failure or a time-out), as AWS documents
# $context.responseOverride for an AWS integration.
_ERROR_BODY = (
    "{\"error\": $input.json('$.error'), \"cause\": $input.json('$.cause'), "
    "\"status\": $input.json('$.status'), \"execution_arn\": $input.json('$.executionArn')}"
)
SYNC_RESPONSE_TEMPLATE = "\n".join(
    [
        "#if($input.path('$.status') == \"SUCCEEDED\")",
        "$input.path('$.output')",
        "#elseif($input.path('$.error') == \"ImageNotFound\")",
        "#set($context.responseOverride.status = 404)",
        _ERROR_BODY,
        "#elseif($input.path('$.error') == \"InvalidInput\")",
        "#set($context.responseOverride.status = 400)",
        _ERROR_BODY,
        "#else",
        "#set($context.responseOverride.status = 500)",
        _ERROR_BODY,
        "#end",
    ]
)


def classify_request_template(state_machine_arn: str) -> str:
    """Body → StartExecution/StartSyncExecution request; the request id makes each execution name unique."""
    return (
        '{"input": "$util.escapeJavaScript($input.json(\'$\'))", '
        f'"stateMachineArn": "{state_machine_arn}", "name": "$context.requestId"}}'
    )


def desired_integrations(
    names: Names,
    ingest_arn: str | None,
    machine: Mapping[str, Any],
    apigw_role_arn: str,
    classifications_arn: str | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """{(path, method): integration} of every route."""
    region = names.region
    sync = machine["type"] == "EXPRESS"
    action = "StartSyncExecution" if sync else "StartExecution"
    out: dict[tuple[str, str], dict[str, Any]] = {
        (CLASSIFY_PATH, "POST"): {
            "type": "AWS",
            "httpMethod": "POST",
            "uri": f"arn:aws:apigateway:{region}:states:action/{action}",
            "credentials": apigw_role_arn,
            "passthroughBehavior": "NEVER",
            "requestTemplates": {"application/json": classify_request_template(machine["arn"])},
            "responseTemplates": {"200": SYNC_RESPONSE_TEMPLATE} if sync else {},
        }
    }
    for path, method, arn in (
        (INGEST_PATH, "POST", ingest_arn),
        (CLASSIFICATIONS_PATH, "POST", classifications_arn),
        (IMAGE_PATH, "GET", classifications_arn),
    ):
        if arn:
            out[(path, method)] = {
                "type": "AWS_PROXY",
                "httpMethod": "POST",
                "uri": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
            }
    return out


# Integration responses of the AWS (non-proxy) integration: status by the service's HTTP status.
INTEGRATION_RESPONSES = {"200": "", "400": "4\\d{2}", "500": "5\\d{2}"}
# Statuses a response template may set with $context.responseOverride.status (declared as method responses).
OVERRIDDEN_STATUSES = ("404",)


def deploy_api(
    ctx: DeployContext, ingest_arn: str | None, machine: Mapping[str, Any], classifications_arn: str | None = None
) -> dict[str, Any]:
    """Role, REST API (routes, stage), API key and usage plan; returns the API's outputs."""
    settings, clients, report, names, options, tags = (
        ctx.settings,
        ctx.clients,
        ctx.report,
        ctx.names,
        ctx.options,
        ctx.tags,
    )
    role_arn = ensure_role(
        ctx,
        names.apigw_role,
        "apigateway",
        api_gateway_policy(machine["arn"]),
        f"{names.stack}: API Gateway -> Step Functions",
    )
    apigw = clients("apigateway")
    api_id, created = _ensure_rest_api(apigw, names, tags)
    validator_id, updated = ensure_request_validation(apigw, api_id)
    validated = {
        (CLASSIFY_PATH, "POST"): method_validation(validator_id),
        (CLASSIFICATIONS_PATH, "POST"): method_validation(validator_id),
    }
    for (path, method), integration in desired_integrations(
        names, ingest_arn, machine, role_arn, classifications_arn
    ).items():
        updated += _ensure_route(apigw, api_id, path, integration, method, validated.get((path, method), {}))
    if ingest_arn:
        updated += _ensure_invoke_permission(clients("lambda"), names, api_id, ingest_arn)
    if classifications_arn:
        for route, sid in (("POST/classifications", "classifications"), ("GET/images/*", "images")):
            updated += _ensure_invoke_permission(clients("lambda"), names, api_id, classifications_arn, route, sid)
    stage_changed = _ensure_stage(apigw, api_id, options.stage, tags, redeploy=created or bool(updated))
    report.record("rest api", names.api, *outcome(created, updated + stage_changed))
    key_id, key_value = _ensure_api_key(apigw, report, names, tags)
    plan_id = _ensure_usage_plan(apigw, report, names, api_id, options, key_id, tags)
    paths = (INGEST_PATH, CLASSIFY_PATH) + ((CLASSIFICATIONS_PATH, "images") if classifications_arn else ())
    endpoints = {p: invoke_url(settings, api_id, options.stage, p) for p in paths}
    return {
        "id": api_id,
        "name": names.api,
        "stage": options.stage,
        "role_arn": role_arn,
        "base_url": invoke_url(settings, api_id, options.stage),
        "endpoints": endpoints,
        "api_key_id": key_id,
        "api_key": key_value,
        "usage_plan_id": plan_id,
        "throttle": {"rate": options.throttle_rate, "burst": options.throttle_burst},
    }


def _find(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get("name") == name), None)


def _ensure_rest_api(apigw: Any, names: Names, tags: dict[str, str]) -> tuple[str, bool]:
    apis = [a for page in apigw.get_paginator("get_rest_apis").paginate() for a in page["items"]]
    api = _find(apis, names.api)
    if api is not None:
        if any((api.get("tags") or {}).get(k) != v for k, v in tags.items()):
            apigw.tag_resource(resourceArn=f"arn:aws:apigateway:{names.region}::/restapis/{api['id']}", tags=tags)
        return api["id"], False
    api = apigw.create_rest_api(
        name=names.api,
        description=f"{names.stack}: serverless workflow lab",
        apiKeySource="HEADER",
        endpointConfiguration={"types": ["REGIONAL"]},
        tags=tags,
    )
    return api["id"], True


def _ensure_resource(apigw: Any, api_id: str, path: str, changed: list[str]) -> str:
    """The id of resource ``/path`` (``images/{image_id}``), creating the missing segments."""
    resources = [r for page in apigw.get_paginator("get_resources").paginate(restApiId=api_id) for r in page["items"]]
    by_path = {r["path"]: r["id"] for r in resources}
    parent = "/"
    for part in path.split("/"):
        here = f"{parent.rstrip('/')}/{part}"
        if here not in by_path:
            by_path[here] = apigw.create_resource(restApiId=api_id, parentId=by_path[parent], pathPart=part)["id"]
            changed.append(here)
        parent = here
    return by_path[parent]


def _ensure_route(
    apigw: Any,
    api_id: str,
    path: str,
    integration: Mapping[str, Any],
    verb: str = "POST",
    validation: Mapping[str, Any] | None = None,
) -> list[str]:
    changed: list[str] = []
    validation = validation or {}
    rid = _ensure_resource(apigw, api_id, path, changed)
    route = f"{verb} /{path}"
    method = _maybe(lambda: apigw.get_method(restApiId=api_id, resourceId=rid, httpMethod=verb))
    if method is not None and any(method.get(k) != v for k, v in validation.items()):
        apigw.delete_method(restApiId=api_id, resourceId=rid, httpMethod=verb)  # moto has no update: made again
        method = None
    if method is None:
        apigw.put_method(
            restApiId=api_id,
            resourceId=rid,
            httpMethod=verb,
            authorizationType="NONE",
            apiKeyRequired=True,
            **validation,
        )
        changed.append(route)
    elif not method.get("apiKeyRequired"):
        apigw.update_method(
            restApiId=api_id,
            resourceId=rid,
            httpMethod=verb,
            patchOperations=[{"op": "replace", "path": "/apiKeyRequired", "value": "true"}],
        )
        changed.append(f"{route} key")
    current = (method or {}).get("methodIntegration") or {}
    wanted = {k: v for k, v in integration.items() if k != "responseTemplates"}
    if any(current.get(k) != v for k, v in wanted.items()):
        apigw.put_integration(
            restApiId=api_id,
            resourceId=rid,
            httpMethod=verb,
            integrationHttpMethod=integration["httpMethod"],
            **{k: v for k, v in wanted.items() if k != "httpMethod"},
        )
        changed.append(f"{route} integration")
        current = {}
    if integration["type"] == "AWS":
        changed += _ensure_responses(
            apigw,
            api_id,
            rid,
            path,
            current.get("integrationResponses") or {},
            (method or {}).get("methodResponses") or {},
            integration.get("responseTemplates") or {},
        )
    return changed


def _ensure_responses(
    apigw: Any,
    api_id: str,
    rid: str,
    path: str,
    integration_responses: Mapping[str, Any],
    method_responses: Mapping[str, Any],
    templates: Mapping[str, str],
) -> list[str]:
    changed = []
    for status in (*INTEGRATION_RESPONSES, *OVERRIDDEN_STATUSES):
        if status not in method_responses:
            apigw.put_method_response(
                restApiId=api_id,
                resourceId=rid,
                httpMethod="POST",
                statusCode=status,
                responseModels={"application/json": "Empty"},
            )
            changed.append(f"POST /{path} {status} method response")
    for status, pattern in INTEGRATION_RESPONSES.items():
        have = integration_responses.get(status)
        template = templates.get(status)
        have_template = ((have or {}).get("responseTemplates") or {}).get("application/json")
        if have is None or (have.get("selectionPattern") or "") != pattern or (have_template or None) != template:
            extra: dict[str, Any] = {"selectionPattern": pattern} if pattern else {}
            if template:
                extra["responseTemplates"] = {"application/json": template}
            apigw.put_integration_response(
                restApiId=api_id, resourceId=rid, httpMethod="POST", statusCode=status, **extra
            )
            changed.append(f"POST /{path} {status} integration response")
    return changed


def _ensure_invoke_permission(
    lam: Any, names: Names, api_id: str, ingest_arn: str, route: str = "POST/ingest", sid: str = "ingest"
) -> list[str]:
    """API Gateway may invoke the function for one route of this API only (:mod:`iam`)."""
    function = ingest_arn.rsplit(":function:", 1)[1].removeprefix(f"{names.stack}-")
    permission = ingest_invoke_permission(stack_resources(names), api_id, function, route, sid)
    policy = _maybe(lambda: json.loads(lam.get_policy(FunctionName=ingest_arn)["Policy"])) or {}
    statement = next((s for s in policy.get("Statement", []) if s.get("Sid") == permission["StatementId"]), None)
    if statement is not None:
        if statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == permission["SourceArn"]:
            return []
        lam.remove_permission(FunctionName=ingest_arn, StatementId=permission["StatementId"])
    lam.add_permission(**permission)
    return [f"{sid} invoke permission"]


def _ensure_stage(apigw: Any, api_id: str, stage: str, tags: dict[str, str], redeploy: bool) -> list[str]:
    current = _maybe(lambda: apigw.get_stage(restApiId=api_id, stageName=stage))
    if current is not None and not redeploy:
        return []
    deployment = apigw.create_deployment(restApiId=api_id, description="swlab deploy")["id"]
    if current is None:
        apigw.create_stage(restApiId=api_id, stageName=stage, deploymentId=deployment, tags=tags)
        return [f"stage {stage}"]
    apigw.update_stage(
        restApiId=api_id,
        stageName=stage,
        patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment}],
    )
    return [f"stage {stage} redeployed"]


def _ensure_api_key(apigw: Any, report: ChangeReport, names: Names, tags: dict[str, str]) -> tuple[str, str]:
    keys = apigw.get_api_keys(nameQuery=names.api_key, includeValues=True, limit=500)["items"]
    key = _find(keys, names.api_key)
    if key is None:
        key = apigw.create_api_key(
            name=names.api_key, enabled=True, tags=tags, description=f"{names.stack}: key of the lab's clients"
        )
        report.record("api key", names.api_key, "created")
    else:
        report.record("api key", names.api_key, "unchanged")
    return key["id"], key["value"]


def _ensure_usage_plan(
    apigw: Any,
    report: ChangeReport,
    names: Names,
    api_id: str,
    options: DeployOptions,
    key_id: str,
    tags: dict[str, str],
) -> str:
    throttle = {"rateLimit": float(options.throttle_rate), "burstLimit": int(options.throttle_burst)}
    stages = [{"apiId": api_id, "stage": options.stage}]
    plans = [p for page in apigw.get_paginator("get_usage_plans").paginate() for p in page["items"]]
    plan, created, updated = _find(plans, names.usage_plan), False, []
    if plan is None:
        plan = apigw.create_usage_plan(
            name=names.usage_plan,
            throttle=throttle,
            apiStages=stages,
            tags=tags,
            description=f"{names.stack}: throttling of the lab's API",
        )
        created = True
    else:
        ops = _usage_plan_patch(plan, throttle, stages)
        if ops:
            apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
            updated.append("throttle/stages")
    keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    if not any(k["id"] == key_id for k in keys):
        apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key_id, keyType="API_KEY")
        updated.append("key")
    report.record("usage plan", names.usage_plan, *outcome(created, [] if created else updated))
    return plan["id"]


def _usage_plan_patch(
    plan: Mapping[str, Any], throttle: Mapping[str, Any], stages: list[dict[str, str]]
) -> list[dict[str, str]]:
    ops = []
    have = plan.get("throttle") or {}
    if float(have.get("rateLimit", -1)) != throttle["rateLimit"]:
        ops.append({"op": "replace", "path": "/throttle/rateLimit", "value": f"{throttle['rateLimit']:g}"})
    if int(have.get("burstLimit", -1)) != throttle["burstLimit"]:
        ops.append({"op": "replace", "path": "/throttle/burstLimit", "value": str(throttle["burstLimit"])})
    have_stages = {(s["apiId"], s["stage"]) for s in plan.get("apiStages") or []}
    for s in stages:
        if (s["apiId"], s["stage"]) not in have_stages:
            ops.append({"op": "add", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"})
    return ops


def _maybe(read: Any) -> Any:
    try:
        return read()
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("NotFoundException", "ResourceNotFoundException"):
            return None
        raise


# -- teardown: usage plans, API keys, REST APIs --------------------------------------------------


def find_usage_plans(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    apigw = clients("apigateway")
    for plan in (p for page in apigw.get_paginator("get_usage_plans").paginate() for p in page["items"]):
        if plan["name"] == names.usage_plan or is_ours(plan.get("tags"), names.stack):
            yield "usage plan", plan["name"], partial(_delete_usage_plan, apigw, plan)


def _delete_usage_plan(apigw: Any, plan: dict[str, Any]) -> None:
    ops = [
        {"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
        for s in plan.get("apiStages") or []
    ]
    if ops:
        apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
    apigw.delete_usage_plan(usagePlanId=plan["id"])


def find_api_keys(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    apigw = clients("apigateway")
    for key in apigw.get_api_keys(nameQuery=f"{names.stack}-", limit=500)["items"]:
        if key["name"] == names.api_key or is_ours(key.get("tags"), names.stack):
            yield "api key", key["name"], partial(apigw.delete_api_key, apiKey=key["id"])


def find_rest_apis(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    apigw = clients("apigateway")
    for api in (a for page in apigw.get_paginator("get_rest_apis").paginate() for a in page["items"]):
        if api["name"] == names.api or is_ours(api.get("tags"), names.stack):
            yield (
                "rest api",
                f"{api['name']} ({api['id']})",
                partial(retry_throttled, partial(apigw.delete_rest_api, restApiId=api["id"])),
            )
