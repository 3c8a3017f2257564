"""What an execution environment needs to know about a function: :class:`RuntimeSpec`, its code, its process env.

Zip code is unzipped once per code hash (``LAMBDA_TASK_ROOT``); the AWS Python
runtime's own packages are a directory of symlinks into this interpreter's
site-packages (``LAMBDA_RUNTIME_DIR``); :func:`build_environment` gives the
process environment in LocalStack's order (AWS's variables, the emulator's, the user's last).
"""

from __future__ import annotations

import io
import shutil
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

MIB = 1024 * 1024
# What the AWS Python runtime itself provides besides the standard library.
AWS_RUNTIME_DISTRIBUTIONS = (
    "awslambdaric",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
    "simplejson",
    "snapshot-restore-py",
)
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass(frozen=True)
class RuntimeSpec:
    """What an environment needs to know about a function; a new spec (new code/config) means new environments."""

    name: str
    arn: str  # the unqualified function ARN
    account_id: str
    region: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: float
    code_dir: Path
    user_env: tuple[tuple[str, str], ...]
    isolated: bool  # only the AWS runtime's packages + the zip are importable
    signature: tuple = field(compare=False)
    version: str = "$LATEST"
    ephemeral_mb: int = 512  # EphemeralStorage: the size of the environment's private /tmp
    python: str = sys.executable  # the interpreter of the declared runtime (:mod:`.interpreters`)
    own_python: bool = True  # the local cloud's interpreter: the linked AWS runtime packages fit it

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        """(account, region, name): the function, whatever its code or configuration."""
        return self.account_id, self.region, self.name

    @property
    def env_key(self) -> tuple[str, str, str, str]:
        """(account, region, name, version): one version's environments (each version runs its own)."""
        return self.account_id, self.region, self.name, self.version


def extract_code(zip_bytes: bytes, code_root: Path, sha_hex: str) -> Path:
    """Unzip the deployed package once per code hash; returns the directory (LAMBDA_TASK_ROOT)."""
    target = code_root / sha_hex
    if (target / ".complete").exists():
        return target
    tmp = code_root / f".{sha_hex}.{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        zf.extractall(tmp)
    (tmp / ".complete").touch()
    try:
        tmp.rename(target)
    except OSError:  # another thread extracted the same code first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def aws_runtime_dir(root: Path) -> Path:
    """A directory of symlinks to the AWS runtime's packages in this interpreter's site-packages."""
    target = root / "python"
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for dist_name in AWS_RUNTIME_DISTRIBUTIONS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top.endswith((".dist-info", ".egg-info", ".pth")) or top in ("..", "__pycache__", "bin"):
                continue
            src = Path(str(dist.locate_file(top)))
            link = target / top
            if src.exists() and not link.exists():
                link.symlink_to(src)
    (target / ".complete").touch()
    return target


def build_environment(
    spec: RuntimeSpec, log_stream: str, runtime_api: str, runtime_dir: Path, endpoint_url: str, tmp_dir: Path
) -> dict[str, str]:
    """The process environment, in localstack's order: AWS's variables, the emulator's, the user's last.

    The emulator adds only what points the function at it (``AWS_ENDPOINT_URL``) and its private
    ``/tmp`` (``TMPDIR``, which ``tempfile`` follows); no variable of the local cloud's own.
    """
    aws = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": f"{spec.code_dir}:{runtime_dir}" if spec.own_python else str(spec.code_dir),
        **TEST_CREDENTIALS,
    }
    emulator = {"AWS_ENDPOINT_URL": endpoint_url, "TMPDIR": str(tmp_dir)}
    return {**aws, **emulator, **dict(spec.user_env)}


def log_stream_name(env_id: str, version: str = "$LATEST", when: float | None = None) -> str:
    day = datetime.fromtimestamp(time.time() if when is None else when, timezone.utc).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{env_id}"
