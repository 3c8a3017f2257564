"""Provision the lab's stack with boto3: idempotent create-or-update, then record the outputs.

``deploy(settings)`` creates or updates, in order: the S3 bucket and the
DynamoDB table (:mod:`storage`), the Lambda functions found in
``lambdas/*/function.json`` with their log groups and roles (:mod:`functions`,
:mod:`images` for container images on AWS), the state machine from
``asl/classify.asl.json`` (:mod:`state_machine`), and the REST API with its
key and usage plan (:mod:`api`); then it prunes the functions whose folder is
gone. Every resource is named ``<stack>-...`` and tagged
``{"swlab:stack": <stack>}`` (:mod:`naming`). Each step reports one line
(created, updated or unchanged) to ``progress``; a second deploy of the same
sources reports every resource unchanged. :func:`swlab.provision.teardown.teardown`
removes it all.

What is deployed beyond the settings is :class:`DeployOptions`; the local
cloud's deploys set ``tls_only=False`` and ``model_reserved_concurrency=2``
(:data:`LOCAL_CLOUD_OPTIONS`, which says why). The outputs (endpoints, names,
ARNs, API key, code hashes) are a :class:`DeployOutputs` written to a JSON file
(default ``<runs_dir>/deploy/<stack>-<target>.json``) and read back with
:func:`load_outputs`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from swlab.provision import images, model_weights, packaging
from swlab.provision.api import deploy_api
from swlab.provision.changes import ChangeReport, Progress
from swlab.provision.context import ClientFactory, DeployContext
from swlab.provision.functions import deploy_functions, function_environment, prune_functions
from swlab.provision.naming import Names
from swlab.provision.options import LOCAL_CLOUD_OPTIONS, DeployOptions, left_out
from swlab.provision.outputs import OUTPUTS_SCHEMA, DeployOutputs, default_outputs_path, load_outputs, write_outputs
from swlab.provision.packaging import FunctionConfig
from swlab.provision.state_machine import deploy_state_machine, load_definition, state_machine_values
from swlab.provision.storage import ensure_bucket, ensure_table
from swlab.settings import Settings

PLANNED = "planned"  # the report's line before the resources: how many functions this deploy has

__all__ = [
    "LOCAL_CLOUD_OPTIONS",
    "DeployOptions",
    "DeployOutputs",
    "DeployResult",
    "default_outputs_path",
    "deploy",
    "load_outputs",
    "preflight",
]


@dataclass
class DeployResult:
    outputs: DeployOutputs
    report: ChangeReport
    outputs_path: Path
    elapsed_s: float


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
    ctx = DeployContext.open(
        settings, _options(options, option_overrides), progress=progress, client_factory=client_factory
    )
    configs = preflight(settings, ctx.names, ctx.options)
    ctx.report.say(f"{PLANNED:<9} {len(configs)} lambda functions")
    outputs = _provision(ctx, configs)
    path = Path(ctx.options.outputs_path or default_outputs_path(settings))
    write_outputs(outputs, path)
    ctx.report.say(f"outputs   {path}  ({ctx.report.summary()})")
    return DeployResult(outputs, ctx.report, path, time.monotonic() - started)


def preflight(settings: Settings, names: Names, options: DeployOptions) -> list[FunctionConfig]:
    """Everything that can fail before the cloud is touched: function configurations, their
    environments' placeholders, the state machine definition, Docker for image functions on AWS."""
    skipped = left_out(options)
    configs = [
        packaging.apply_overrides(c, options.function_overrides)
        for c in packaging.discover_functions(options.lambdas_dir)
        if c.name not in skipped
    ]
    for config in configs:
        function_environment(names, options, config)
    unknown = sorted(set(options.provisioned_concurrency) - {c.name for c in configs})
    if unknown:
        raise packaging.PackagingError(
            f"provisioned_concurrency names {unknown}, which this deploy does not include "
            f"(its functions: {', '.join(sorted(c.name for c in configs))})"
        )
    arns = {c.name: {"arn": names.arn("lambda", f"function:{names.function(c.name)}")} for c in configs}
    load_definition(options.asl_path, state_machine_values(names, arns, options), options.preprocessing)
    if settings.target == "aws" and any(c.packaging == "image" for c in configs) and not images.docker_available():
        raise packaging.PackagingError(images.DOCKER_MISSING)
    return configs


def _provision(ctx: DeployContext, configs: list[FunctionConfig]) -> DeployOutputs:
    settings, options = ctx.settings, ctx.options
    bucket = ensure_bucket(ctx)
    table = ensure_table(ctx)
    ctx = _with_onnx_models(ctx)
    functions = deploy_functions(ctx, configs)
    machine = deploy_state_machine(ctx, functions)
    ingest_arn = functions[options.ingest_function]["arn"] if options.ingest_function in functions else None
    classifications = functions.get(options.classifications_function, {}).get("arn")
    api = deploy_api(ctx, ingest_arn, machine, classifications)
    if options.prune:
        prune_functions(ctx, functions)
    return DeployOutputs(
        schema=OUTPUTS_SCHEMA,
        stack=settings.stack,
        target=settings.target,
        region=settings.region,
        account_id=ctx.names.account_id,
        endpoint_url=settings.endpoint_url,
        deployed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        bucket=bucket,
        bucket_tls_only=options.tls_only,
        table=table,
        functions=functions,
        state_machine=machine,
        api=api,
        changes=ctx.report.counts(),
    )


def _with_onnx_models(ctx: DeployContext) -> DeployContext:
    """For ``inference="onnx"`` without given model keys: the prepare-models step's ONNX part (export the
    models with the weights the cache has, else seeded ones; upload), and the keys as placeholders."""
    options = ctx.options
    given = options.placeholders
    if options.inference != "onnx" or all(given.get(f"{m.capitalize()}OnnxKey") for m in model_weights.MODELS):
        return ctx
    s3 = ctx.clients("s3")
    prepared = model_weights.prepare_models(s3, ctx.names.bucket, weights=options.weights, progress=None)
    exported = model_weights.prepare_onnx(s3, ctx.names.bucket, prepared)
    for name, model in exported.items():
        ctx.report.say(f"onnx      {model['key']}  ({model['weights']} weights, sha256 {model['sha256'][:12]})")
    keys = {**model_weights.weights_substitutions(prepared), **model_weights.onnx_substitutions(exported)}
    return replace(ctx, options=replace(options, placeholders={**keys, **given}))


def _options(options: DeployOptions | None, overrides: Mapping[str, Any]) -> DeployOptions:
    options = options or DeployOptions()
    return replace(options, **{k: v for k, v in overrides.items() if v is not None}) if overrides else options
