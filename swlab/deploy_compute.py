"""Lambda functions (zip, or container image on AWS) and the state machine: create-or-update.

Part of :mod:`swlab.deploy`. A function is updated only where it differs:
code when the ``CodeSha256`` differs (zips are deterministic, so an unchanged
folder gives the same hash), configuration when a setting differs.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from swlab import packaging
from swlab.packaging import FunctionSpec, PackagingError
from swlab.settings import Settings
from swlab.stack import TAG_KEY, ChangeReport, Clients, Names, canonical, error_code, is_missing, outcome, retry

PACKAGING_TAG = "swlab:packaging"
ROLE_WAIT_S = 120.0  # IAM propagation on AWS; the local cloud needs none
ZIP_UPLOAD_LIMIT = 45 * 1024 * 1024  # larger zips go through S3 (direct upload limit: 50 MB)
DOCKER_MISSING = (
    "Docker is required to build the torch functions' container images for AWS; "
    "install and start Docker (docker info must work), or deploy to the local target, "
    "where these functions run as zips on the local cloud's Python environment"
)


@dataclass(frozen=True)
class CodeSource:
    """Deployable code: a zip (bytes, or an S3 location for large zips) or a container image."""

    kind: str  # "zip" | "image"
    sha256: str  # what Lambda reports as CodeSha256
    code: Mapping[str, Any]  # the ``Code`` argument of create_function
    size_bytes: int = 0


def _role_not_ready(exc: Exception) -> bool:
    """A new role (or its policy) not yet visible to the service: Lambda's "cannot be assumed",
    Step Functions' "not authorized to assume" / "not authorized to access the Log Destination"."""
    text = str(exc).lower()
    return error_code(exc) in ("InvalidParameterValueException", "AccessDeniedException") and (
        "assume" in text or "log destination" in text)


def function_code(settings: Settings, clients: Clients, report: ChangeReport, names: Names,
                  spec: FunctionSpec, shared_dir: Path, cache_dir: Path, tags: dict[str, str]) -> CodeSource:
    """Build the function's code for the target.

    ``packaging: image`` functions are container images on AWS; on the local
    target they are a zip of their code only (no requirements installed): the
    local cloud's Python environment supplies torch, as the image would.
    """
    if spec.packaging == "image" and settings.target == "aws":
        return build_and_push_image(clients, report, names, spec, shared_dir, tags)
    pkg = packaging.build_zip_package(spec, shared_dir, cache_dir, with_dependencies=spec.packaging == "zip")
    if pkg.size_bytes <= ZIP_UPLOAD_LIMIT:
        return CodeSource("zip", pkg.code_sha256, {"ZipFile": pkg.zip_bytes}, pkg.size_bytes)
    key = f"_deploy/{spec.name}/{hashlib.sha256(pkg.zip_bytes).hexdigest()}.zip"
    clients("s3").put_object(Bucket=names.bucket, Key=key, Body=pkg.zip_bytes)
    return CodeSource("zip", pkg.code_sha256, {"S3Bucket": names.bucket, "S3Key": key}, pkg.size_bytes)


def desired_configuration(spec: FunctionSpec, code: CodeSource, role_arn: str, env: Mapping[str, str],
                          description: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"Role": role_arn, "Timeout": spec.timeout_s, "MemorySize": spec.memory_mb,
                           "Description": description, "Environment": {"Variables": dict(env)}}
    if code.kind == "zip":
        cfg.update(Handler=spec.handler, Runtime=spec.runtime)
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


def deploy_function(settings: Settings, clients: Clients, report: ChangeReport, names: Names, spec: FunctionSpec,
                    role_arn: str, env: Mapping[str, str], options: Any, tags: dict[str, str],
                    reserved_concurrency: int | None = None) -> dict[str, Any]:
    """Create or update one function (with its reserved concurrency, or none); returns its outputs.

    Functions are tagged ``swlab:packaging`` = ``zip`` | ``image`` too: the local
    cloud runs an ``image`` function's code-only zip on its own Python environment
    (which supplies torch, as the image would), a ``zip`` function isolated.
    """
    lam, fname = clients("lambda"), names.function(spec.name)
    tags = {**tags, PACKAGING_TAG: spec.packaging}
    cache_dir = Path(options.cache_dir or packaging.default_cache_dir())
    code = function_code(settings, clients, report, names, spec, Path(options.lambdas_dir) / packaging.SHARED_DIR,
                         cache_dir, tags)
    desired = desired_configuration(spec, code, role_arn, env, spec.description or f"{names.stack}: {spec.name}")
    current = _get_function(lam, fname)
    updated: list[str] = []
    if current is not None and current["Configuration"].get("PackageType", "Zip") != _package_type(code):
        lam.delete_function(FunctionName=fname)
        current, updated = None, ["package type (replaced)"]
    if current is None:
        _create_function(lam, fname, spec, code, desired, tags, report)
        created = not updated
    else:
        created = False
        updated += _update_function(lam, fname, spec, code, desired, current, tags)
    if ensure_reserved_concurrency(lam, fname, reserved_concurrency) and not created:
        updated.append("reserved concurrency")
    cfg = wait_function_ready(lam, fname)
    report.record("lambda function", fname, *outcome(created, updated))
    return {"function_name": fname, "arn": cfg["FunctionArn"], "role_arn": role_arn, "code_sha256": cfg["CodeSha256"],
            "packaging": code.kind, "code_bytes": code.size_bytes, "memory_mb": cfg["MemorySize"],
            "timeout_s": cfg["Timeout"], "architecture": spec.architecture, "log_group": names.function_log_group(spec.name),
            "reserved_concurrency": reserved_concurrency}


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


def _create_function(lam: Any, fname: str, spec: FunctionSpec, code: CodeSource, desired: Mapping[str, Any],
                     tags: dict[str, str], report: ChangeReport) -> None:
    kwargs = dict(FunctionName=fname, Code=dict(code.code), PackageType=_package_type(code),
                  Architectures=[spec.architecture], Tags=tags, Publish=False, **desired)
    retry(lambda: lam.create_function(**kwargs), _role_not_ready, ROLE_WAIT_S,
          f"IAM role of {fname} to become usable by Lambda", report.progress)


def _update_function(lam: Any, fname: str, spec: FunctionSpec, code: CodeSource, desired: Mapping[str, Any],
                     current: Mapping[str, Any], tags: dict[str, str]) -> list[str]:
    cfg, updated = current["Configuration"], []
    if cfg.get("CodeSha256") != code.sha256 or cfg.get("Architectures", ["x86_64"]) != [spec.architecture]:
        lam.update_function_code(FunctionName=fname, Architectures=[spec.architecture], **code.code)
        wait_function_ready(lam, fname)
        updated.append("code")
    diffs = configuration_diff(cfg, desired)
    if diffs:
        retry(lambda: lam.update_function_configuration(FunctionName=fname, **desired), _role_not_ready, ROLE_WAIT_S)
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


def prune_functions(clients: Clients, report: ChangeReport, names: Names, keep: Iterable[str]) -> None:
    """Delete the stack's functions whose folder is gone, with their log group and role (deploy converges)."""
    from swlab.teardown import _delete_role

    lam, wanted = clients("lambda"), {names.function(k) for k in keep}
    for fn in (f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]):
        fname = fn["FunctionName"]
        if not fname.startswith(f"{names.stack}-") or fname in wanted:
            continue
        if (lam.list_tags(Resource=fn["FunctionArn"]).get("Tags") or {}).get(TAG_KEY) != names.stack:
            continue
        short = fname.removeprefix(f"{names.stack}-")
        lam.delete_function(FunctionName=fname)
        report.record("lambda function", fname, "deleted", "its folder is gone")
        _delete_if_present(lambda: clients("logs").delete_log_group(logGroupName=names.function_log_group(short)))
        report.record("log group", names.function_log_group(short), "deleted")
        _delete_if_present(lambda: _delete_role(clients("iam"), names.lambda_role(short)))
        report.record("iam role", names.lambda_role(short), "deleted")


def _delete_if_present(delete: Callable[[], Any]) -> None:
    try:
        delete()
    except Exception as exc:  # noqa: BLE001
        if not is_missing(exc):
            raise


# -- container images (AWS only) ---------------------------------------------------------------

# PyPI's Linux x86_64 torch wheels pull in the CUDA libraries (several GB), which a CPU-only Lambda
# never uses and which every cold start would pull. PyTorch's CPU index serves the same versions
# as ``X.Y.Z+cpu``; ``torch==X.Y.Z`` matches them and pip prefers them over PyPI's. (Not yet run
# against AWS by this project: the rehearsal test checks the Dockerfile's text, not a build.)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

DOCKERFILE = """\
FROM public.ecr.aws/lambda/python:{python_version}
COPY requirements.txt ${{LAMBDA_TASK_ROOT}}/requirements.txt
RUN pip install --no-cache-dir --extra-index-url {torch_index} \\
        -r ${{LAMBDA_TASK_ROOT}}/requirements.txt --target ${{LAMBDA_TASK_ROOT}}
COPY *.py ${{LAMBDA_TASK_ROOT}}/
CMD ["{handler}"]
"""


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def build_and_push_image(clients: Clients, report: ChangeReport, names: Names, spec: FunctionSpec,
                         shared_dir: Path, tags: dict[str, str]) -> CodeSource:
    """Build the function's image (code + requirements on AWS's Python base image) and push it to ECR.

    The image tag is the hash of the build context, so an unchanged function is neither rebuilt nor pushed.
    """
    if not docker_available():
        raise PackagingError(DOCKER_MISSING)
    repo_uri = ensure_ecr_repository(clients, report, names.ecr_repository(spec.name), tags)
    with tempfile.TemporaryDirectory(prefix=f"swlab-image-{spec.name}-") as ctx:
        digest_input = _write_build_context(Path(ctx), spec, shared_dir)
        tag = hashlib.sha256(digest_input).hexdigest()[:20]
        digest = _image_digest(clients, names.ecr_repository(spec.name), tag)
        if digest is None:
            platform = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[spec.architecture]
            _docker("build", "--platform", platform, "--provenance=false", "-t", f"{repo_uri}:{tag}", ctx)
            _docker_login(clients, repo_uri.split("/")[0])
            _docker("push", f"{repo_uri}:{tag}")
            digest = _image_digest(clients, names.ecr_repository(spec.name), tag)
            if digest is None:
                raise PackagingError(f"docker push of {repo_uri}:{tag} succeeded but ECR does not list the image")
    return CodeSource("image", digest.removeprefix("sha256:"), {"ImageUri": f"{repo_uri}@{digest}"})


def _write_build_context(ctx: Path, spec: FunctionSpec, shared_dir: Path) -> bytes:
    files = packaging.package_files(spec, shared_dir, None)
    for arcname, src in files.items():
        shutil.copyfile(src, ctx / arcname)
    requirements = "\n".join(packaging.requirement_lines(spec.requirements)) + "\n"
    (ctx / "requirements.txt").write_text(requirements)
    dockerfile = DOCKERFILE.format(python_version=spec.python_version, handler=spec.handler,
                                   torch_index=TORCH_CPU_INDEX)
    (ctx / "Dockerfile").write_text(dockerfile)
    return packaging.deterministic_zip(files) + requirements.encode() + dockerfile.encode() + spec.architecture.encode()


def ensure_ecr_repository(clients: Clients, report: ChangeReport, name: str, tags: dict[str, str]) -> str:
    ecr = clients("ecr")
    try:
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        report.record("ecr repository", name, "unchanged")
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) != "RepositoryNotFoundException":
            raise
        repo = ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": False},
                                     tags=[{"Key": k, "Value": v} for k, v in tags.items()])["repository"]
        report.record("ecr repository", name, "created")
    return repo["repositoryUri"]


def _image_digest(clients: Clients, repo: str, tag: str) -> str | None:
    try:
        return clients("ecr").describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])["imageDetails"][0]["imageDigest"]
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) == "ImageNotFoundException":
            return None
        raise


def _docker_login(clients: Clients, registry: str) -> None:
    token = clients("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, password = base64.b64decode(token).decode().split(":", 1)
    subprocess.run(["docker", "login", "--username", user, "--password-stdin", registry],
                   input=password.encode(), check=True, capture_output=True)


def _docker(*args: str) -> None:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackagingError(f"docker {args[0]} failed:\n{proc.stderr.strip()[-3000:]}")


# -- state machine ----------------------------------------------------------------------------


def logging_configuration(log_group_arn: str) -> dict[str, Any]:
    return {"level": "ALL", "includeExecutionData": True,
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": log_group_arn.removesuffix(":*") + ":*"}}]}


def ensure_state_machine(clients: Clients, report: ChangeReport, names: Names, definition: str, role_arn: str,
                         log_group_arn: str, workflow_type: str, tags: dict[str, str]) -> dict[str, Any]:
    """Create or update the classification state machine (replaced when its type changes)."""
    sfn, name = clients("stepfunctions"), names.state_machine
    arn = names.arn("states", f"stateMachine:{name}")
    logging = logging_configuration(log_group_arn)
    current = _describe_state_machine(sfn, arn)
    updated: list[str] = []
    if current is not None and current["type"] != workflow_type:
        sfn.delete_state_machine(stateMachineArn=arn)
        _wait_deleted(sfn, arn)
        current, updated = None, [f"type {current['type']} -> {workflow_type} (replaced)"]
    if current is None:
        arn = retry(lambda: sfn.create_state_machine(
            name=name, definition=definition, roleArn=role_arn, type=workflow_type, loggingConfiguration=logging,
            tags=[{"key": k, "value": v} for k, v in tags.items()])["stateMachineArn"],
            _role_not_ready, ROLE_WAIT_S, f"IAM role of {name} to become usable by Step Functions", report.progress)
        report.record("state machine", name, *outcome(not updated, updated))
    else:
        changes = {}
        if canonical(current["definition"]) != canonical(definition):
            changes["definition"] = definition
        if current["roleArn"] != role_arn:
            changes["roleArn"] = role_arn
        if canonical(current.get("loggingConfiguration") or {}) != canonical(logging):
            changes["loggingConfiguration"] = logging
        if changes:
            retry(lambda: sfn.update_state_machine(stateMachineArn=arn, **changes), _role_not_ready, ROLE_WAIT_S)
        have = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
        if any(have.get(k) != v for k, v in tags.items()):
            sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in tags.items()])
            changes["tags"] = tags
        report.record("state machine", name, *outcome(False, list(changes)))
    return {"name": name, "arn": arn, "type": workflow_type, "role_arn": role_arn,
            "log_group": names.state_machine_log_group}


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
