"""Remove everything a deploy created, and prove it.

Resources are found without the outputs file: by their deterministic names
(:class:`swlab.stack.Names`) and by listing each service for names starting
with ``<stack>-`` whose ``swlab:stack`` tag is this stack (so another stack
named ``<stack>-x`` is never touched). Missing things are fine: teardown is
idempotent. The proof is :func:`remaining`: the Resource Groups Tagging API
filtered on the stack tag, plus direct listings for the services that API
does not cover on moto (IAM, DynamoDB, API Gateway) — both must be empty.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from swlab.settings import Settings
from swlab.stack import (
    TAG_KEY, Change, ChangeReport, ClientFactory, Clients, Names, Progress, account_id, error_code, is_missing,
)

Found = tuple[str, str, Callable[[], None]]  # (kind, name, delete)


@dataclass
class TeardownReport:
    stack: str
    deleted: list[Change] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "clean": self.clean, "elapsed_s": round(self.elapsed_s, 3),
                "deleted": [c.__dict__ for c in self.deleted], "remaining": self.remaining}


def teardown(settings: Settings, *, progress: Progress | None = None, client_factory: ClientFactory | None = None,
             outputs_path: str | Path | None = None, verify_timeout_s: float | None = None) -> TeardownReport:
    """Delete the stack's resources (in dependency order), then list what is left (should be nothing).

    ``outputs_path`` (default: the deploy's) is removed too. On AWS the tagging
    API lags behind deletions, so the check polls up to ``verify_timeout_s``
    (default 120 s on AWS, none locally).
    """
    started = time.monotonic()
    clients, report = Clients(settings, client_factory), ChangeReport(progress)
    names = Names(settings.stack, account_id(clients), settings.region)
    for finder in _FINDERS:
        for kind, name, delete in finder(clients, names, settings):
            _delete(report, kind, name, delete)
    if verify_timeout_s is None:
        verify_timeout_s = 120.0 if settings.target == "aws" else 0.0
    left = _wait_empty(clients, names, settings, verify_timeout_s)
    for item in left:
        (report.progress or print)(f"REMAINS   {item}")
    from swlab.deploy import default_outputs_path

    Path(outputs_path or default_outputs_path(settings)).unlink(missing_ok=True)
    return TeardownReport(settings.stack, report.changes, left, time.monotonic() - started)


def _delete(report: ChangeReport, kind: str, name: str, delete: Callable[[], None]) -> None:
    try:
        delete()
    except Exception as exc:  # noqa: BLE001 — gone meanwhile is fine; anything else is reported
        if not is_missing(exc):
            report.record(kind, name, "failed", f"{error_code(exc) or type(exc).__name__}: {exc}")
            return
    report.record(kind, name, "deleted")


def remaining(clients: Clients, names: Names, settings: Settings) -> list[str]:
    """What still carries the stack's tag (tagging API) or is listed under its names (direct listings)."""
    tagged = clients("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_KEY, "Values": [names.stack]}])
    left = [f"tagged {r['ResourceARN']}" for page in tagged for r in page["ResourceTagMappingList"]]
    for finder in _FINDERS:
        left += [f"{kind} {name}" for kind, name, _ in finder(clients, names, settings)]
    return left


def _wait_empty(clients: Clients, names: Names, settings: Settings, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = remaining(clients, names, settings)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(5.0)


# -- finders: each yields (kind, name, delete) for the stack's resources of one kind ------------


def _ours(tags: dict[str, str] | None, stack: str) -> bool:
    return (tags or {}).get(TAG_KEY) == stack


def _usage_plans(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    apigw = clients("apigateway")
    for plan in (p for page in apigw.get_paginator("get_usage_plans").paginate() for p in page["items"]):
        if plan["name"] == names.usage_plan or _ours(plan.get("tags"), names.stack):
            yield "usage plan", plan["name"], lambda plan=plan: _delete_usage_plan(apigw, plan)


def _delete_usage_plan(apigw: Any, plan: dict[str, Any]) -> None:
    ops = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
           for s in plan.get("apiStages") or []]
    if ops:
        apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
    apigw.delete_usage_plan(usagePlanId=plan["id"])


def _api_keys(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    apigw = clients("apigateway")
    for key in apigw.get_api_keys(nameQuery=f"{names.stack}-", limit=500)["items"]:
        if key["name"] == names.api_key or _ours(key.get("tags"), names.stack):
            yield "api key", key["name"], lambda key=key: apigw.delete_api_key(apiKey=key["id"])


def _rest_apis(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    apigw = clients("apigateway")
    for api in (a for page in apigw.get_paginator("get_rest_apis").paginate() for a in page["items"]):
        if api["name"] == names.api or _ours(api.get("tags"), names.stack):
            yield "rest api", f"{api['name']} ({api['id']})", lambda api=api: _retry_throttled(
                lambda: apigw.delete_rest_api(restApiId=api["id"]))


def _retry_throttled(call: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """AWS allows one DeleteRestApi per 30 s per account: wait out TooManyRequestsException."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "TooManyRequestsException" or time.monotonic() > deadline:
                raise
            time.sleep(5.0)


def _state_machines(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    sfn = clients("stepfunctions")
    for sm in (m for page in sfn.get_paginator("list_state_machines").paginate() for m in page["stateMachines"]):
        if not sm["name"].startswith(f"{names.stack}-"):
            continue
        tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=sm["stateMachineArn"])["tags"]}
        if sm["name"] == names.state_machine or _ours(tags, names.stack):
            yield "state machine", sm["name"], lambda sm=sm: sfn.delete_state_machine(
                stateMachineArn=sm["stateMachineArn"])


def _functions(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    lam = clients("lambda")
    for fn in (f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]):
        if fn["FunctionName"].startswith(f"{names.stack}-") and _ours(
                lam.list_tags(Resource=fn["FunctionArn"]).get("Tags"), names.stack):
            yield "lambda function", fn["FunctionName"], lambda fn=fn: lam.delete_function(
                FunctionName=fn["FunctionName"])


def _ecr_repositories(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    if settings.target != "aws":  # images are built for AWS only
        return
    ecr = clients("ecr")
    for repo in (r for page in ecr.get_paginator("describe_repositories").paginate() for r in page["repositories"]):
        if repo["repositoryName"].startswith(f"{names.stack}-"):
            tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]}
            if _ours(tags, names.stack):
                yield "ecr repository", repo["repositoryName"], lambda repo=repo: ecr.delete_repository(
                    repositoryName=repo["repositoryName"], force=True)


def _log_groups(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    """Tagged groups, and untagged ``/aws/lambda/<fn>`` groups of our (still listed) functions."""
    logs = clients("logs")
    ours = {f"/aws/lambda/{n}" for n in _function_names(clients, names)}
    for prefix in (f"/aws/lambda/{names.stack}-", f"/aws/vendedlogs/states/{names.stack}-"):
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
        for group in (g for page in pages for g in page["logGroups"]):
            name = group["logGroupName"]
            arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
            if name in ours or name == names.state_machine_log_group or _ours(
                    logs.list_tags_for_resource(resourceArn=arn).get("tags"), names.stack):
                yield "log group", name, lambda name=name: logs.delete_log_group(logGroupName=name)


def _function_names(clients: Clients, names: Names) -> set[str]:
    lam = clients("lambda")
    return {f["FunctionName"] for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]
            if f["FunctionName"].startswith(f"{names.stack}-")}


def _roles(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    iam = clients("iam")
    fixed = {names.states_role, names.apigw_role}
    for role in (r for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]):
        name = role["RoleName"]
        if not name.startswith(f"{names.stack}-"):
            continue
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
        if name in fixed or _ours(tags, names.stack):
            yield "iam role", name, lambda name=name: _delete_role(iam, name)


def _delete_role(iam: Any, name: str) -> None:
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=name)


def _tables(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    ddb = clients("dynamodb")
    for table in (t for page in ddb.get_paginator("list_tables").paginate() for t in page["TableNames"]):
        if not table.startswith(f"{names.stack}-"):
            continue
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
        tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}
        if table == names.table or _ours(tags, names.stack):
            yield "dynamodb table", table, lambda table=table: _delete_table(ddb, table)


def _delete_table(ddb: Any, table: str) -> None:
    ddb.delete_table(TableName=table)
    ddb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 90})


def _buckets(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    s3 = clients("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if not name.startswith(f"{names.stack}-"):
            continue
        if name == names.bucket or _ours(_bucket_tags(s3, name), names.stack):
            yield "s3 bucket", name, lambda name=name: _delete_bucket(s3, name)


def _bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except Exception as exc:  # noqa: BLE001 — no tags, or a bucket in another region / account
        if is_missing(exc) or error_code(exc) in ("AccessDenied", "PermanentRedirect", "AuthorizationHeaderMalformed"):
            return {}
        raise


def _delete_bucket(s3: Any, bucket: str) -> None:
    """Empty the bucket (every object version and delete marker, unfinished uploads), then delete it."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if batch:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        batch = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if batch:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=bucket)


# Dependency order: API first (it references the state machine and the ingest function), roles late.
# Log groups go before the functions, so the untagged groups a service made for them are still recognised.
_FINDERS = (_usage_plans, _api_keys, _rest_apis, _state_machines, _log_groups, _functions, _ecr_repositories,
            _roles, _tables, _buckets)
