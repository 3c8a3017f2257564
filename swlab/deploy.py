"""Provision the lab's stack with boto3: idempotent create-or-update, then record the outputs.

``deploy(settings)`` creates or updates, in order: the S3 bucket (public access
blocked, SSE-S3, TLS-only policy), the DynamoDB table (on-demand), the log
groups, one IAM role per function plus one for Step Functions and one for API
Gateway, the Lambda functions found in ``lambdas/*/function.json``, the state
machine from ``asl/classify.asl.json``, and the REST API with its key and usage
plan (:mod:`swlab.deploy_api`). Every resource is named ``<stack>-...`` and
tagged ``{"swlab:stack": <stack>}``. Each step reports one line (created,
updated or unchanged) to ``progress``; a second deploy of the same sources
reports every resource unchanged. :func:`swlab.teardown.teardown` removes it all.

Load safety: on the local target the torch functions are deployed with a
reserved concurrency of 2 each (:data:`RESERVED_CONCURRENCY_DEFAULT`; option
``reserved_concurrency``, CLI ``--reserved-concurrency FN=N``), so a burst of
classifications is throttled and retried by the state machine instead of
starting one ~1 GB torch process per request; on AWS none is reserved unless asked.

The outputs (endpoints, names, ARNs, API key, code hashes) go to a JSON file
(default ``<runs_dir>/deploy/<stack>-<target>.json``) read back with
:func:`load_outputs`. Layout ``OUTPUTS_SCHEMA``::

    schema, stack, target, region, account_id, endpoint_url, deployed_at,
    bucket, bucket_tls_only, table, changes {created|updated|unchanged|deleted: n},
    functions {<name>: {function_name, arn, role_arn, code_sha256, packaging,
                        code_bytes, memory_mb, timeout_s, architecture, log_group,
                        reserved_concurrency (int or null)}},
    state_machine {name, arn, type, role_arn, log_group},
    api {id, name, stage, role_arn, base_url, endpoints {ingest, classify},
         api_key_id, api_key, usage_plan_id, throttle {rate, burst}}

Where AWS differs (and only there) the code differs: on AWS, functions with
``"packaging": "image"`` (the torch ones, too large for a zip) are container
images built and pushed with Docker to ECR; on the local target they are
deployed as a zip of their code only, because the local cloud's Python
environment supplies torch as the container image would on AWS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from swlab import packaging
from swlab.packaging import FunctionSpec
from swlab.settings import Settings
from swlab.stack import (
    STAGE, ChangeReport, log, ClientFactory, Clients, Names, Progress, account_id, canonical, error_code,
    is_missing, outcome, stack_tags,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUTS_SCHEMA = "swlab.deploy.outputs/1"
WORKFLOW_TYPES = ("EXPRESS", "STANDARD")
LOG_RETENTION_DAYS = 14


@dataclass(frozen=True)
class DeployOptions:
    """What a deploy builds, beyond the settings (all have defaults)."""

    lambdas_dir: Path = REPO_ROOT / "lambdas"
    asl_path: Path = REPO_ROOT / "asl" / "classify.asl.json"
    workflow_type: str = "EXPRESS"
    # {"*": {"memory_mb": 1024}, "resnet": {"memory_mb": 3008, "timeout_s": 60}}
    function_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # extra environment variables: {"*": {...}, "ingest": {"ALLOWED_HOSTS": "127.0.0.1:8000"}}
    extra_environment: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # values of extra ${Placeholders} in function.json environments, e.g. {"AllowedHosts": "127.0.0.1:8765"}
    placeholders: Mapping[str, str] = field(default_factory=dict)
    ingest_function: str = "ingest"
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    stage: str = STAGE
    # Deny non-TLS requests with a bucket policy. Default: on AWS only. The local cloud serves plain
    # HTTP on 127.0.0.1 and moto 5.2.5 evaluates the policy's Deny, so every object request would fail.
    tls_only: bool | None = None
    # Reserved concurrency per function ({"resnet": 2}; "*" for every function; a function left out
    # reserves none). None: the target's default, RESERVED_CONCURRENCY_DEFAULT (see there).
    reserved_concurrency: Mapping[str, int] | None = None
    # Delete the stack's functions (with role and log group) whose folder is no longer in lambdas_dir.
    prune: bool = True
    cache_dir: Path | None = None
    outputs_path: Path | None = None

    def __post_init__(self) -> None:
        if self.workflow_type not in WORKFLOW_TYPES:
            raise ValueError(f"workflow_type must be one of {WORKFLOW_TYPES}, got {self.workflow_type!r}")
        for name, value in (self.reserved_concurrency or {}).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"reserved concurrency of {name!r} must be an integer >= 1, got {value!r}")


# Reserved concurrency of the torch functions (``packaging: image``) when none is given, per target.
# Local: each environment is a torch process of 0.7-0.95 GB RSS and the local cloud starts one per
# concurrent request. Measured (1 request/s on /classify for 60 s from a fresh deploy, 2 cores, 24 GiB):
# unbounded, cold starts piled up to 16-18 environments per model, the cloud's process tree reached
# 30 GB of summed RSS (3.3 GB of memory left available) and all 60 requests answered 504 after 29 s;
# with 2 each, at most 6 torch environments, 6.7 GB peak, 60/60 answered 200 (p50 0.47 s, the first
# 25 s); with 1 each, 3.7 GB, 60/60 (p50 0.56 s). The excess invocations get
# Lambda.TooManyRequestsException and the model tasks' Retry (10 attempts, up to ~64 s) absorbs them.
# AWS: none by default (the account's limit applies; reserve there with ``reserved_concurrency=``).
RESERVED_CONCURRENCY_DEFAULT = {"local": 2, "aws": None}


def reserved_concurrency_for(settings: Settings, options: DeployOptions, spec: FunctionSpec) -> int | None:
    """The reserved concurrency to deploy ``spec`` with: the option's value for it (or ``"*"``), else the
    target's default for torch functions (``packaging: image``), else none."""
    if options.reserved_concurrency is not None:
        chosen = options.reserved_concurrency
        return chosen.get(spec.name, chosen.get("*"))
    return RESERVED_CONCURRENCY_DEFAULT.get(settings.target) if spec.packaging == "image" else None


@dataclass
class DeployResult:
    outputs: dict[str, Any]
    report: ChangeReport
    outputs_path: Path
    elapsed_s: float


def default_outputs_path(settings: Settings) -> Path:
    return Path(settings.runs_dir) / "deploy" / f"{settings.stack}-{settings.target}.json"


def deploy(
    settings: Settings,
    options: DeployOptions | None = None,
    *,
    progress: Progress | None = None,
    client_factory: ClientFactory | None = None,
    **option_overrides: Any,
) -> DeployResult:
    """Create or update the whole stack; write and return its outputs and a change report.

    ``option_overrides`` are :class:`DeployOptions` fields (``workflow_type="STANDARD"``, ...).
    """
    started = time.monotonic()
    options = _options(options, option_overrides)
    clients, report = Clients(settings, client_factory), ChangeReport(progress)
    names = Names(settings.stack, account_id(clients), settings.region)
    specs = preflight(settings, names, options)
    outputs = _provision(settings, clients, report, names, specs, options)
    path = Path(options.outputs_path or default_outputs_path(settings))
    write_outputs(outputs, path)
    (report.progress or log.info)(f"outputs   {path}  ({report.summary()})")
    return DeployResult(outputs, report, path, time.monotonic() - started)


def preflight(settings: Settings, names: Names, options: DeployOptions) -> list[FunctionSpec]:
    """Everything that can fail before the cloud is touched: function configurations, their
    environments' placeholders, the state machine definition, Docker for image functions on AWS."""
    specs = [packaging.apply_overrides(s, options.function_overrides)
             for s in packaging.discover_functions(options.lambdas_dir)]
    values = placeholder_values(names, options.placeholders)
    for spec in specs:
        packaging.resolve_environment(spec, values, _extra_environment(options, spec.name))
    arns = {s.name: {"arn": names.arn("lambda", f"function:{names.function(s.name)}")} for s in specs}
    load_definition(options.asl_path, state_machine_values(names, arns))
    if settings.target == "aws" and any(s.packaging == "image" for s in specs):
        from swlab.deploy_compute import DOCKER_MISSING, docker_available

        if not docker_available():
            raise packaging.PackagingError(DOCKER_MISSING)
    return specs


def _extra_environment(options: DeployOptions, function: str) -> dict[str, str]:
    return {**options.extra_environment.get("*", {}), **options.extra_environment.get(function, {})}


def _provision(settings: Settings, clients: Clients, report: ChangeReport, names: Names,
               specs: list[FunctionSpec], options: DeployOptions) -> dict[str, Any]:
    tags = stack_tags(settings.stack)
    tls_only = settings.target == "aws" if options.tls_only is None else options.tls_only
    bucket = ensure_bucket(clients, report, names, tags, tls_only)
    table = ensure_table(clients, report, names, tags)
    functions = deploy_functions(settings, clients, report, names, specs, options, tags)
    machine = deploy_state_machine(clients, report, names, functions, options, tags)
    from swlab.deploy_api import deploy_api

    ingest_arn = functions[options.ingest_function]["arn"] if options.ingest_function in functions else None
    api = deploy_api(settings, clients, report, names, ingest_arn, machine, options, tags)
    if options.prune:
        from swlab.deploy_compute import prune_functions

        prune_functions(clients, report, names, functions)
    return {
        "schema": OUTPUTS_SCHEMA, "stack": settings.stack, "target": settings.target, "region": settings.region,
        "account_id": names.account_id, "endpoint_url": settings.endpoint_url,
        "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bucket": bucket, "bucket_tls_only": tls_only, "table": table,
        "functions": functions, "state_machine": machine, "api": api, "changes": report.counts(),
    }


def _options(options: DeployOptions | None, overrides: Mapping[str, Any]) -> DeployOptions:
    options = options or DeployOptions()
    return replace(options, **{k: v for k, v in overrides.items() if v is not None}) if overrides else options


def write_outputs(outputs: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def load_outputs(path: str | Path) -> dict[str, Any]:
    """The outputs a deploy recorded; refuses files of another schema."""
    path = Path(path)
    try:
        outputs = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no deployment outputs at {path}: deploy the stack first (scripts/deploy)") from None
    if outputs.get("schema") != OUTPUTS_SCHEMA:
        raise ValueError(f"{path}: schema {outputs.get('schema')!r} is not {OUTPUTS_SCHEMA!r}")
    return outputs


# -- storage ----------------------------------------------------------------------------


def tls_only_policy(bucket: str) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{bucket}"
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                       "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def ensure_bucket(clients: Clients, report: ChangeReport, names: Names, tags: dict[str, str],
                  tls_only: bool = True) -> str:
    """The images bucket: private (public access blocked), SSE-S3 by default, TLS-only if asked, tagged."""
    s3, bucket, created, updated = clients("s3"), names.bucket, False, []
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 — head_bucket's 404 is a ClientError with code "404"
        if not is_missing(exc):
            raise
        extra = {} if names.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": names.region}}
        s3.create_bucket(Bucket=bucket, **extra)
        created = True
    if _get(lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]) != PUBLIC_ACCESS_BLOCK:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        updated.append("public access block")
    rules = _get(lambda: s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]) or []
    if not any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "AES256" for r in rules):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        updated.append("encryption")
    policy = _get(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"])
    if tls_only and (policy is None or canonical(policy) != canonical(tls_only_policy(bucket))):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket)))
        updated.append("policy")
    elif not tls_only and policy is not None and canonical(policy) == canonical(tls_only_policy(bucket)):
        s3.delete_bucket_policy(Bucket=bucket)
        updated.append("policy removed")
    current = _get(lambda: {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}) or {}
    if any(current.get(k) != v for k, v in tags.items()):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
            {"Key": k, "Value": v} for k, v in {**current, **tags}.items()]})
        updated.append("tags")
    report.record("s3 bucket", bucket, *outcome(created, [] if created else updated))
    return bucket


def _get(read: Any) -> Any:
    """``read()``, or ``None`` when the thing read does not exist."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001
        if is_missing(exc):
            return None
        raise


def ensure_table(clients: Clients, report: ChangeReport, names: Names, tags: dict[str, str]) -> str:
    """The images table: on-demand, key ``image_id`` (S), tagged."""
    ddb, table = clients("dynamodb"), names.table
    desc = _get(lambda: ddb.describe_table(TableName=table)["Table"])
    created, updated = desc is None, []
    if created:
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "image_id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
                         Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    else:
        if desc["KeySchema"] != [{"AttributeName": "image_id", "KeyType": "HASH"}]:
            raise RuntimeError(f"table {table} exists with another key {desc['KeySchema']}; tear the stack down first")
        if desc.get("BillingModeSummary", {}).get("BillingMode") != "PAY_PER_REQUEST":
            ddb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
            updated.append("billing mode")
        current = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"]}
        if any(current.get(k) != v for k, v in tags.items()):
            ddb.tag_resource(ResourceArn=desc["TableArn"], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            updated.append("tags")
    report.record("dynamodb table", table, *outcome(created, updated))
    return table


def ensure_log_group(clients: Clients, report: ChangeReport, name: str, tags: dict[str, str]) -> str:
    """A tagged log group with a retention (so teardown finds it and it does not grow forever)."""
    logs = clients("logs")
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    created, updated = not found, []
    if created:
        try:
            logs.create_log_group(logGroupName=name, tags=tags)
        except Exception as exc:  # noqa: BLE001 — created meanwhile (e.g. by the service itself)
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            created = False
    arn = found[0]["arn"] if found else None
    if not created and found:
        current = logs.list_tags_for_resource(resourceArn=_log_group_arn(found[0]))["tags"]
        if any(current.get(k) != v for k, v in tags.items()):
            logs.tag_resource(resourceArn=_log_group_arn(found[0]), tags=tags)
            updated.append("tags")
    if not found or found[0].get("retentionInDays") != LOG_RETENTION_DAYS:
        logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)
        updated.append("retention")
    report.record("log group", name, *outcome(created, updated))
    if arn is None:
        arn = next(g["arn"] for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
                   if g["logGroupName"] == name)
    return arn


def _log_group_arn(group: Mapping[str, Any]) -> str:
    """The log group's ARN without the trailing ``:*`` that describe_log_groups adds."""
    return group.get("logGroupArn") or group["arn"].removesuffix(":*")


# -- IAM ---------------------------------------------------------------------------------


def trust_policy(service: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


def ensure_role(clients: Clients, report: ChangeReport, name: str, service: str, policy: Mapping[str, Any],
                tags: dict[str, str], description: str = "") -> str:
    """A role trusted by ``service`` with one inline policy (named like the role); returns its ARN."""
    iam = clients("iam")
    role = _get(lambda: iam.get_role(RoleName=name)["Role"])
    created, updated = role is None, []
    if created:
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)),
                               Description=description, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["Role"]
    else:
        if canonical(role["AssumeRolePolicyDocument"]) != canonical(trust_policy(service)):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy(service)))
            updated.append("trust policy")
        current = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
        if any(current.get(k) != v for k, v in tags.items()):
            iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            updated.append("tags")
    existing = _get(lambda: iam.get_role_policy(RoleName=name, PolicyName=name)["PolicyDocument"])
    if existing is None or canonical(existing) != canonical(policy):
        iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        updated.append("policy")
    report.record("iam role", name, *outcome(created, [] if created else updated))
    return role["Arn"]


def stack_resources(names: Names) -> Any:
    from swlab import iam

    return iam.StackResources(names.stack, names.account_id, names.region, names.bucket, names.table)


def lambda_policy(spec: FunctionSpec, names: Names) -> dict[str, Any]:
    """The function's least-privilege policy, from its ``access`` (built by :mod:`swlab.iam`)."""
    from swlab import iam

    return iam.function_policy(spec.name, spec.access, stack_resources(names))


def states_policy(names: Names, functions: list[str]) -> dict[str, Any]:
    from swlab import iam

    return iam.state_machine_policy(stack_resources(names), functions)


def apigw_policy(names: Names, state_machine_arn: str) -> dict[str, Any]:
    from swlab import iam

    return iam.api_gateway_policy(state_machine_arn)


# -- functions --------------------------------------------------------------------------------


# Placeholders with a default, set per deploy with ``placeholders={...}``:
# - AllowedHosts: hosts the ingest function may fetch despite its private-address guard
#   (empty on AWS; the lab's local image server on the local target);
# - <Model>WeightsKey: S3 key of a model's prepared weights (empty: deterministic seeded weights).
DEFAULT_PLACEHOLDERS = {"AllowedHosts": "", "AlexnetWeightsKey": "", "ResnetWeightsKey": "",
                        "MobilenetWeightsKey": ""}


def placeholder_values(names: Names, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``${Bucket}``, ``${Table}``, ``${Stack}``, ``${Region}``, ``${AccountId}``, then defaults and ``extra``."""
    return {"Bucket": names.bucket, "Table": names.table, "Stack": names.stack, "Region": names.region,
            "AccountId": names.account_id, **DEFAULT_PLACEHOLDERS, **(extra or {})}


def deploy_functions(settings: Settings, clients: Clients, report: ChangeReport, names: Names,
                     specs: list[FunctionSpec], options: DeployOptions, tags: dict[str, str]) -> dict[str, Any]:
    """Log group, role, package and function for each spec; returns the functions' outputs by name."""
    from swlab.deploy_compute import deploy_function

    out = {}
    values = placeholder_values(names, options.placeholders)
    for spec in specs:
        env = packaging.resolve_environment(spec, values, _extra_environment(options, spec.name))
        ensure_log_group(clients, report, names.function_log_group(spec.name), tags)
        role_arn = ensure_role(clients, report, names.lambda_role(spec.name), "lambda.amazonaws.com",
                               lambda_policy(spec, names), tags, f"{names.stack}: function {spec.name}")
        out[spec.name] = deploy_function(settings, clients, report, names, spec, role_arn, env, options, tags,
                                         reserved_concurrency_for(settings, options, spec))
    return out


# -- state machine -------------------------------------------------------------------------------


def state_machine_values(names: Names, functions: Mapping[str, Any]) -> dict[str, str]:
    """Every value a definition may use: ``${FetchImageArn}`` for function ``fetch_image`` (and so on),
    ``${TableName}``, ``${BucketName}`` and the environment placeholders (``${Table}``, ``${Bucket}``, ...)."""
    from swlab import asl

    values = {**placeholder_values(names), "TableName": names.table, "BucketName": names.bucket}
    values.update({asl.function_placeholder(name): fn["arn"] for name, fn in functions.items()})
    return {k: v for k, v in values.items() if v}


def deploy_state_machine(clients: Clients, report: ChangeReport, names: Names,
                         functions: Mapping[str, Any], options: DeployOptions, tags: dict[str, str]) -> dict[str, Any]:
    from swlab.deploy_compute import ensure_state_machine

    log_group_arn = ensure_log_group(clients, report, names.state_machine_log_group, tags)
    invoked = [name for name in functions if name != options.ingest_function]
    role_arn = ensure_role(clients, report, names.states_role, "states.amazonaws.com",
                           states_policy(names, invoked), tags, f"{names.stack}: state machine")
    definition = load_definition(options.asl_path, state_machine_values(names, functions))
    return ensure_state_machine(clients, report, names, definition, role_arn, log_group_arn,
                                options.workflow_type, tags)


def load_definition(path: Path, values: Mapping[str, str]) -> str:
    """The ASL at ``path`` with the placeholders it uses substituted and checked (:mod:`swlab.asl`), as JSON text."""
    from swlab import asl

    used = asl.placeholders(json.loads(Path(path).read_text()))
    return asl.render(asl.load_definition(path, {k: v for k, v in values.items() if k in used}))
