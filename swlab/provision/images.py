"""Container images of the torch functions on AWS: build with Docker, push to ECR; delete the repositories.

On AWS, functions with ``"packaging": "image"`` (too large for a zip) are
container images: code and requirements on AWS's Python base image, one ECR
repository per function, tagged with the stack. The image tag is the hash of
the build context, so an unchanged function is neither rebuilt nor pushed.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
from functools import partial
from pathlib import Path
from typing import Iterator

from swlab.provision import packaging
from swlab.provision.awserrors import error_code
from swlab.provision.context import Clients, DeployContext, Found
from swlab.provision.naming import Names, is_ours
from swlab.provision.packaging import CodeSource, FunctionConfig, PackagingError
from swlab.settings import Settings

DOCKER_MISSING = (
    "Docker is required to build the torch functions' container images for AWS; "
    "install and start Docker (docker info must work), or deploy to the local target, "
    "where these functions run as zips on the local cloud's Python environment"
)

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


def build_and_push_image(ctx: DeployContext, config: FunctionConfig, shared_dir: Path) -> CodeSource:
    """Build the function's image (code + requirements on AWS's Python base image) and push it to ECR.

    The image tag is the hash of the build context, so an unchanged function is neither rebuilt nor pushed.
    """
    if not docker_available():
        raise PackagingError(DOCKER_MISSING)
    repository = ctx.names.ecr_repository(config.name)
    repo_uri = ensure_ecr_repository(ctx, repository)
    with tempfile.TemporaryDirectory(prefix=f"swlab-image-{config.name}-") as build_dir:
        digest_input = _write_build_context(Path(build_dir), config, shared_dir)
        tag = hashlib.sha256(digest_input).hexdigest()[:20]
        digest = _image_digest(ctx.clients, repository, tag)
        if digest is None:
            platform = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[config.architecture]
            _docker("build", "--platform", platform, "--provenance=false", "-t", f"{repo_uri}:{tag}", build_dir)
            _docker_login(ctx.clients, repo_uri.split("/")[0])
            _docker("push", f"{repo_uri}:{tag}")
            digest = _image_digest(ctx.clients, repository, tag)
            if digest is None:
                raise PackagingError(f"docker push of {repo_uri}:{tag} succeeded but ECR does not list the image")
    return CodeSource("image", digest.removeprefix("sha256:"), {"ImageUri": f"{repo_uri}@{digest}"})


def _write_build_context(build_dir: Path, config: FunctionConfig, shared_dir: Path) -> bytes:
    files = packaging.package_files(config, shared_dir, None)
    for arcname, src in files.items():
        shutil.copyfile(src, build_dir / arcname)
    requirements = "\n".join(packaging.requirement_lines(config.requirements)) + "\n"
    (build_dir / "requirements.txt").write_text(requirements)
    dockerfile = DOCKERFILE.format(
        python_version=config.python_version, handler=config.handler, torch_index=TORCH_CPU_INDEX
    )
    (build_dir / "Dockerfile").write_text(dockerfile)
    return (
        packaging.deterministic_zip(files) + requirements.encode() + dockerfile.encode() + config.architecture.encode()
    )


def ensure_ecr_repository(ctx: DeployContext, name: str) -> str:
    ecr = ctx.clients("ecr")
    try:
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        ctx.report.record("ecr repository", name, "unchanged")
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) != "RepositoryNotFoundException":
            raise
        repo = ecr.create_repository(
            repositoryName=name,
            imageScanningConfiguration={"scanOnPush": False},
            tags=[{"Key": k, "Value": v} for k, v in ctx.tags.items()],
        )["repository"]
        ctx.report.record("ecr repository", name, "created")
    return repo["repositoryUri"]


def _image_digest(clients: Clients, repo: str, tag: str) -> str | None:
    try:
        details = clients("ecr").describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])["imageDetails"]
        return details[0]["imageDigest"]
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) == "ImageNotFoundException":
            return None
        raise


def _docker_login(clients: Clients, registry: str) -> None:
    token = clients("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, password = base64.b64decode(token).decode().split(":", 1)
    subprocess.run(
        ["docker", "login", "--username", user, "--password-stdin", registry],
        input=password.encode(),
        check=True,
        capture_output=True,
    )


def _docker(*args: str) -> None:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackagingError(f"docker {args[0]} failed:\n{proc.stderr.strip()[-3000:]}")


def find_ecr_repositories(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    """The stack's ECR repositories (on AWS only: images are built for AWS only)."""
    if settings.target != "aws":
        return
    ecr = clients("ecr")
    for repo in (r for page in ecr.get_paginator("describe_repositories").paginate() for r in page["repositories"]):
        if repo["repositoryName"].startswith(f"{names.stack}-"):
            tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]}
            if is_ours(tags, names.stack):
                yield (
                    "ecr repository",
                    repo["repositoryName"],
                    partial(ecr.delete_repository, repositoryName=repo["repositoryName"], force=True),
                )
