"""What a deploy builds beyond the settings: :class:`DeployOptions` (all have defaults).

The defaults are the safe ones for AWS. Two options exist for the local
cloud's sake and are set by whoever deploys there (the lab's run layer and
``scripts/deploy`` start from :data:`TARGET_DEFAULTS`, the e2e tests pass them),
never chosen by the deploy code itself:
``tls_only`` (the TLS-only bucket policy) and ``model_reserved_concurrency``
(the torch functions' bound). :data:`LOCAL_CLOUD_OPTIONS` holds their values
for the local cloud, with the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from swlab.provision.naming import STAGE
from swlab.provision.packaging import FunctionConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_TYPES = ("EXPRESS", "STANDARD")

# The options a deploy to the local cloud needs (profiles/mission.yaml and ci.yaml set the same values):
# - tls_only False: the local cloud serves plain HTTP on 127.0.0.1 and moto 5.2.5 evaluates the policy's
#   Deny, so with the TLS-only policy every object request would fail.
# - model_reserved_concurrency 2: each torch environment is a process of 0.7-0.95 GB RSS and the local cloud
#   starts one per concurrent request. Measured (1 request/s on /classify for 60 s from a fresh deploy,
#   2 cores, 24 GiB): unbounded, cold starts piled up to 16-18 environments per model, the cloud's process
#   tree reached 30 GB of summed RSS (3.3 GB of memory left available) and all 60 requests answered 504
#   after 29 s; with 2 each, at most 6 torch environments, 6.7 GB peak, 60/60 answered 200 (p50 0.47 s,
#   the first 25 s); with 1 each, 3.7 GB, 60/60 (p50 0.56 s). The excess invocations get
#   Lambda.TooManyRequestsException and the model tasks' Retry (10 attempts, up to ~64 s) absorbs them;
#   their other service errors (a model down) have a short retrier of their own (3 attempts, <= 7 s).
# On AWS (the defaults): TLS-only bucket, nothing reserved (the account's limit applies).
LOCAL_CLOUD_OPTIONS: Mapping[str, Any] = {"tls_only": False, "model_reserved_concurrency": 2}
# What a deploy gets, per target, before the caller's own options (the run layer and the CLI apply it):
# data, not a branch in the deploy code; a profile's or a caller's deploy options win.
TARGET_DEFAULTS: Mapping[str, Mapping[str, Any]] = {"local": LOCAL_CLOUD_OPTIONS, "aws": {}}


# The variants a deploy chooses between (experiment axes): each value names the functions it deploys.
# A deploy includes the chosen value's functions and leaves out the others' (``prune`` then deletes
# them from an earlier deploy of another variant, so the stack holds, and the collect step and the cost
# model see, only what this variant runs). Functions named by no variant (fetch_image, aggregate, ...)
# are always deployed.
VARIANT_FUNCTIONS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "preprocessing": {"steps": ("grayscale", "flip", "rotate", "resize"), "fused": ("preprocess",)},
    "inference": {
        "torch": ("alexnet", "resnet", "mobilenet"),
        "onnx": ("alexnet_onnx", "resnet_onnx", "mobilenet_onnx"),
    },
}
MODEL_NAMES = ("alexnet", "resnet", "mobilenet")
# Where the pretrained weights come from (model_weights.resolve_weights): the cache, else a download,
# else seeded weights (auto); the cache or a download, else an error (pretrained); seeded (untrained).
WEIGHTS = ("auto", "pretrained", "untrained")


def target_defaults(target: str) -> dict[str, Any]:
    """The deploy options ``target`` starts from (:data:`TARGET_DEFAULTS`)."""
    return dict(TARGET_DEFAULTS[target])


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
    # The function behind POST /classifications and GET /images/{image_id} (the asynchronous API).
    classifications_function: str = "classifications"
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    stage: str = STAGE
    # Deny non-TLS requests with a bucket policy (False for the local cloud: LOCAL_CLOUD_OPTIONS).
    tls_only: bool = True
    # Reserved concurrency per function ({"resnet": 2}; "*" for every function). A function it does not
    # name (directly or by "*") gets model_reserved_concurrency if it is a torch function (packaging
    # "image"), else none.
    reserved_concurrency: Mapping[str, int] = field(default_factory=dict)
    # Reserved concurrency of each torch function (packaging "image"); None: none (2 on the local cloud).
    model_reserved_concurrency: int | None = None
    # Provisioned concurrency per function folder ({"alexnet": 1, "resnet": 1, "mobilenet": 1}): a published
    # version, the alias "live" on it with that many initialised environments, and the state machine invoking
    # the alias (swlab.provision.provisioned). A function it does not name has none and is invoked unqualified.
    provisioned_concurrency: Mapping[str, int] = field(default_factory=dict)
    # Workflow 2's variants (VARIANT_FUNCTIONS): four preprocessing functions or one fused ``preprocess``;
    # the models on torch (container images on AWS) or on ONNX Runtime (zip packages).
    preprocessing: str = "steps"
    inference: str = "torch"
    # Model weights for the "prepare models" step (WEIGHTS); not used by deploy() itself.
    weights: str = "auto"
    # Delete the stack's functions (with role and log group) whose folder is no longer in lambdas_dir
    # or that the chosen variants leave out.
    prune: bool = True
    cache_dir: Path | None = None
    outputs_path: Path | None = None

    def __post_init__(self) -> None:
        if self.workflow_type not in WORKFLOW_TYPES:
            raise ValueError(f"workflow_type must be one of {WORKFLOW_TYPES}, got {self.workflow_type!r}")
        for option, allowed in (
            ("preprocessing", tuple(VARIANT_FUNCTIONS["preprocessing"])),
            ("inference", tuple(VARIANT_FUNCTIONS["inference"])),
            ("weights", WEIGHTS),
        ):
            if getattr(self, option) not in allowed:
                raise ValueError(f"{option} must be one of {allowed}, got {getattr(self, option)!r}")
        chosen = {**self.reserved_concurrency, "model_reserved_concurrency": self.model_reserved_concurrency}
        for name, value in chosen.items():
            if value is None and name == "model_reserved_concurrency":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"reserved concurrency of {name!r} must be an integer >= 1, got {value!r}")
        for name, value in self.provisioned_concurrency.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"provisioned concurrency of {name!r} must be an integer >= 1, got {value!r}")


def reserved_concurrency_for(options: DeployOptions, config: FunctionConfig) -> int | None:
    """The reserved concurrency to deploy ``config`` with: the option's value for it (or ``"*"``), else
    ``model_reserved_concurrency`` for torch functions (``packaging: image``), else none."""
    chosen = options.reserved_concurrency
    default = options.model_reserved_concurrency if config.packaging == "image" else None
    return chosen.get(config.name, chosen.get("*", default))


def left_out(options: DeployOptions) -> set[str]:
    """The function folders the chosen variants do not deploy (the other values' functions)."""
    out: set[str] = set()
    for option, values in VARIANT_FUNCTIONS.items():
        chosen = getattr(options, option)
        out.update(f for value, functions in values.items() if value != chosen for f in functions)
    return (
        out
        - set(VARIANT_FUNCTIONS["preprocessing"][options.preprocessing])
        - set(VARIANT_FUNCTIONS["inference"][options.inference])
    )


def model_function(options: DeployOptions, model: str) -> str:
    """The function folder that runs ``model`` (``alexnet``) in the chosen inference variant."""
    return model if options.inference == "torch" else f"{model}_{options.inference}"
