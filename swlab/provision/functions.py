"""Lambda functions (zip, or container image on AWS): create, update, prune, delete.

Each function gets its log group and its role first (:mod:`storage`,
:mod:`roles`). A function is updated only where it differs: code when the
``CodeSha256`` differs (zips are deterministic, so an unchanged folder gives
the same hash), configuration when a setting differs. Where AWS differs (and
only there) the code differs: on AWS, functions with ``"packaging": "image"``
are container images (:mod:`images`); on the local target they are a zip of
their code only, because the local cloud's Python environment supplies torch
as the container image would on AWS.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from swlab.provision import images, packaging
from swlab.provision.awserrors import delete_if_present, error_code, retry, role_not_ready
from swlab.provision.changes import ChangeReport, outcome
from swlab.provision.context import Clients, DeployContext, Found
from swlab.provision.iam import function_policy
from swlab.provision.naming import Names, is_ours
from swlab.provision.options import DeployOptions, reserved_concurrency_for
from swlab.provision.packaging import CodeSource, FunctionConfig
from swlab.provision.provisioned import ensure_provisioned, wait_ready
from swlab.provision.roles import delete_role, ensure_role, stack_resources
from swlab.provision.storage import delete_log_group, ensure_log_group
from swlab.settings import Settings

PACKAGING_TAG = "swlab:packaging"
ROLE_WAIT_S = 120.0  # IAM propagation on AWS; the local cloud needs none
ZIP_UPLOAD_LIMIT = 45 * 1024 * 1024  # larger zips go through S3 (direct upload limit: 50 MB)

# Placeholders with a default, set per deploy with ``placeholders={...}``:
# - AllowedHosts: hosts the ingest function may fetch despite its private-address guard
#   (empty on AWS; the lab's local image server on the local target);
# - <Model>WeightsKey: S3 key of a model's prepared weights (empty: deterministic seeded weights).
# - <Model>OnnxKey: S3 key of a model's ONNX export (the onnx inference variant; empty: the function fails).
DEFAULT_PLACEHOLDERS = {
    "AllowedHosts": "",
    **{f"{m}{kind}Key": "" for m in ("Alexnet", "Resnet", "Mobilenet") for kind in ("Weights", "Onnx")},
}


def placeholder_values(names: Names, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``${Bucket}``, ``${Table}``, ``${Stack}``, ``${Region}``, ``${AccountId}``, ``${StateMachineArn}``, then
    defaults and ``extra``."""
    return {
        "Bucket": names.bucket,
        "Table": names.table,
        "Stack": names.stack,
        "Region": names.region,
        "AccountId": names.account_id,
        "StateMachineArn": names.arn("states", f"stateMachine:{names.state_machine}"),
        **DEFAULT_PLACEHOLDERS,
        **(extra or {}),
    }


def extra_environment(options: DeployOptions, function: str) -> dict[str, str]:
    return {**options.extra_environment.get("*", {}), **options.extra_environment.get(function, {})}


def function_environment(names: Names, options: DeployOptions, config: FunctionConfig) -> dict[str, str]:
    """The function's environment with every placeholder substituted (an unknown one is an error)."""
    values = placeholder_values(names, options.placeholders)
    return packaging.resolve_environment(config, values, extra_environment(options, config.name))


def deploy_functions(ctx: DeployContext, configs: list[FunctionConfig]) -> dict[str, Any]:
    """Log group, role, package and function for each configuration; returns the functions' outputs by name."""
    out = {}
    names = ctx.names
    for config in configs:
        env = function_environment(names, ctx.options, config)
        ensure_log_group(ctx, names.function_log_group(config.name))
        policy = function_policy(config.name, config.access, stack_resources(names))
        role_arn = ensure_role(
            ctx, names.lambda_role(config.name), "lambda", policy, f"{names.stack}: function {config.name}"
        )
        out[config.name] = deploy_function(ctx, config, role_arn, env, reserved_concurrency_for(ctx.options, config))
        fname, count = out[config.name]["function_name"], ctx.options.provisioned_concurrency.get(config.name)
        out[config.name].update(
            ensure_provisioned(ctx.clients("lambda"), fname, out[config.name]["arn"], count, ctx.report)
        )
    provisioned = [f["function_name"] for f in out.values() if f.get("provisioned_concurrency")]
    if provisioned:
        wait_ready(ctx.clients("lambda"), provisioned, say=ctx.report.say)
    return out


def function_code(ctx: DeployContext, config: FunctionConfig, shared_dir: Path, cache_dir: Path) -> CodeSource:
    """Build the function's code for the target.

    ``packaging: image`` functions are container images on AWS; on the local
    target they are a zip of their code only (no requirements installed): the
    local cloud's Python environment supplies torch, as the image would.
    """
    if config.packaging == "image" and ctx.settings.target == "aws":
        return images.build_and_push_image(ctx, config, shared_dir)
    pkg = packaging.build_zip_package(config, shared_dir, cache_dir, with_dependencies=config.packaging == "zip")
    if pkg.size_bytes <= ZIP_UPLOAD_LIMIT:
        return CodeSource("zip", pkg.code_sha256, {"ZipFile": pkg.zip_bytes}, pkg.size_bytes)
    bucket = ctx.names.bucket
    key = f"_deploy/{config.name}/{hashlib.sha256(pkg.zip_bytes).hexdigest()}.zip"
    ctx.clients("s3").put_object(Bucket=bucket, Key=key, Body=pkg.zip_bytes)
    return CodeSource("zip", pkg.code_sha256, {"S3Bucket": bucket, "S3Key": key}, pkg.size_bytes)


def desired_configuration(
    config: FunctionConfig, code: CodeSource, role_arn: str, env: Mapping[str, str], description: str
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "Role": role_arn,
        "Timeout": config.timeout_s,
        "MemorySize": config.memory_mb,
        "Description": description,
        "Environment": {"Variables": dict(env)},
    }
    if code.kind == "zip":
        cfg.update(Handler=config.handler, Runtime=config.runtime)
    return cfg


def configuration_diff(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """The names of the settings where the deployed function differs from ``desired``."""
    diffs = []
    for key, want in desired.items():
        have = current.get(key)
        if key == "Environment":
            have, want = (have or {}).get("Variables", {}), want["Variables"]
        if have != want:
            diffs.append(key)
    return diffs


def deploy_function(
    ctx: DeployContext,
    config: FunctionConfig,
    role_arn: str,
    env: Mapping[str, str],
    reserved_concurrency: int | None = None,
) -> dict[str, Any]:
    """Create or update one function (with its reserved concurrency, or none); returns its outputs.

    Functions are tagged ``swlab:packaging`` = ``zip`` | ``image`` too: the local
    cloud runs an ``image`` function's code-only zip on its own Python environment
    (which supplies torch, as the image would), a ``zip`` function isolated.
    """
    names, options = ctx.names, ctx.options
    lam, fname = ctx.clients("lambda"), names.function(config.name)
    ctx = replace(ctx, tags={**ctx.tags, PACKAGING_TAG: config.packaging})
    cache_dir = Path(options.cache_dir or packaging.default_cache_dir())
    code = function_code(ctx, config, Path(options.lambdas_dir) / packaging.SHARED_DIR, cache_dir)
    desired = desired_configuration(config, code, role_arn, env, config.description or f"{names.stack}: {config.name}")
    current = _get_function(lam, fname)
    updated: list[str] = []
    if current is not None and current["Configuration"].get("PackageType", "Zip") != _package_type(code):
        lam.delete_function(FunctionName=fname)
        current, updated = None, ["package type (replaced)"]
    if current is None:
        _create_function(lam, fname, config, code, desired, ctx.tags, ctx.report)
        created = not updated
    else:
        created = False
        updated += _update_function(lam, fname, config, code, desired, current, ctx.tags)
    if ensure_reserved_concurrency(lam, fname, reserved_concurrency) and not created:
        updated.append("reserved concurrency")
    cfg = wait_function_ready(lam, fname)
    ctx.report.record("lambda function", fname, *outcome(created, updated))
    return {
        "function_name": fname,
        "arn": cfg["FunctionArn"],
        "role_arn": role_arn,
        "code_sha256": cfg["CodeSha256"],
        "packaging": code.kind,
        "code_bytes": code.size_bytes,
        "memory_mb": cfg["MemorySize"],
        "timeout_s": cfg["Timeout"],
        "architecture": config.architecture,
        "log_group": names.function_log_group(config.name),
        "reserved_concurrency": reserved_concurrency,
    }


def ensure_reserved_concurrency(lam: Any, fname: str, reserved: int | None) -> bool:
    """Set (or, for ``None``, remove) the function's reserved concurrency; True if it changed."""
    have = lam.get_function_concurrency(FunctionName=fname).get("ReservedConcurrentExecutions")
    if have is not None and int(have) == reserved:
        return False
    if reserved is None:
        if have is None:
            return False
        lam.delete_function_concurrency(FunctionName=fname)
    else:
        lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=reserved)
    return True


def _package_type(code: CodeSource) -> str:
    return "Image" if code.kind == "image" else "Zip"


def _get_function(lam: Any, fname: str) -> dict[str, Any] | None:
    try:
        return lam.get_function(FunctionName=fname)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _create_function(
    lam: Any,
    fname: str,
    config: FunctionConfig,
    code: CodeSource,
    desired: Mapping[str, Any],
    tags: dict[str, str],
    report: ChangeReport,
) -> None:
    kwargs = dict(
        FunctionName=fname,
        Code=dict(code.code),
        PackageType=_package_type(code),
        Architectures=[config.architecture],
        Tags=tags,
        Publish=False,
        **desired,
    )
    retry(
        lambda: lam.create_function(**kwargs),
        role_not_ready,
        ROLE_WAIT_S,
        f"IAM role of {fname} to become usable by Lambda",
        report.progress,
    )


def _update_function(
    lam: Any,
    fname: str,
    config: FunctionConfig,
    code: CodeSource,
    desired: Mapping[str, Any],
    current: Mapping[str, Any],
    tags: dict[str, str],
) -> list[str]:
    cfg, updated = current["Configuration"], []
    if cfg.get("CodeSha256") != code.sha256 or cfg.get("Architectures", ["x86_64"]) != [config.architecture]:
        lam.update_function_code(FunctionName=fname, Architectures=[config.architecture], **code.code)
        wait_function_ready(lam, fname)
        updated.append("code")
    diffs = configuration_diff(cfg, desired)
    if diffs:
        retry(lambda: lam.update_function_configuration(FunctionName=fname, **desired), role_not_ready, ROLE_WAIT_S)
        wait_function_ready(lam, fname)
        updated += diffs
    have_tags = current.get("Tags") or {}
    if any(have_tags.get(k) != v for k, v in tags.items()):
        lam.tag_resource(Resource=cfg["FunctionArn"], Tags=tags)
        updated.append("tags")
    return updated


def wait_function_ready(lam: Any, fname: str, timeout_s: float = 300.0) -> dict[str, Any]:
    """Poll until the function is Active and its last update done (AWS applies changes asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        cfg = lam.get_function_configuration(FunctionName=fname)
        state, update = cfg.get("State", "Active"), cfg.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = cfg.get("StateReason") or cfg.get("LastUpdateStatusReason")
            raise RuntimeError(f"function {fname} failed to deploy: {reason}")
        if state == "Active" and update == "Successful":
            return cfg
        if time.monotonic() > deadline:
            raise TimeoutError(f"function {fname} still {state}/{update} after {timeout_s:.0f} s")
        time.sleep(1.0)


def _stack_functions(clients: Clients, names: Names) -> Iterator[dict[str, Any]]:
    """The functions named ``<stack>-...`` and tagged with the stack."""
    lam = clients("lambda")
    for fn in (f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]):
        if fn["FunctionName"].startswith(f"{names.stack}-") and is_ours(
            lam.list_tags(Resource=fn["FunctionArn"]).get("Tags"), names.stack
        ):
            yield fn


def prune_functions(ctx: DeployContext, keep: Iterable[str]) -> None:
    """Delete the stack's functions not in ``keep`` (folder gone, or a variant not chosen), with their log
    group and role (deploy converges)."""
    clients, names, report = ctx.clients, ctx.names, ctx.report
    wanted = {names.function(k) for k in keep}
    for fn in list(_stack_functions(clients, names)):
        fname = fn["FunctionName"]
        if fname in wanted:
            continue
        short = fname.removeprefix(f"{names.stack}-")
        clients("lambda").delete_function(FunctionName=fname)
        report.record("lambda function", fname, "deleted", "not in this deploy (folder gone or variant not chosen)")
        delete_if_present(lambda: delete_log_group(clients, names.function_log_group(short)))
        report.record("log group", names.function_log_group(short), "deleted")
        delete_if_present(lambda: delete_role(clients("iam"), names.lambda_role(short)))
        report.record("iam role", names.lambda_role(short), "deleted")


def find_functions(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    lam = clients("lambda")
    for fn in _stack_functions(clients, names):
        yield "lambda function", fn["FunctionName"], partial(lam.delete_function, FunctionName=fn["FunctionName"])
