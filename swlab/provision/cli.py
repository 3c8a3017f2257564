"""Command line of provisioning: ``python -m swlab.provision.cli {deploy,teardown}`` (scripts/deploy, scripts/teardown).

Settings come from the usual places (arguments > ``SWLAB_*``/``AWS_*`` environment
variables > defaults); on the local target ``AWS_ENDPOINT_URL`` (or
``--endpoint-url``) names the running local cloud. Like the lab's profiles, a
deploy to the local target applies :data:`~swlab.provision.options.LOCAL_CLOUD_OPTIONS`
(no TLS-only bucket policy, reserved concurrency 2 per torch function) unless
``--tls-only`` / ``--model-reserved-concurrency`` / ``--reserved-concurrency``
say otherwise. One line per resource is printed as it is handled; the exit
status is non-zero if anything failed or, for teardown, if anything remains.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swlab.provision.asl import AslError
from swlab.provision.deploy import deploy
from swlab.provision.lock import StackBusy, stack_lock
from swlab.provision.model_weights import WeightsUnavailable
from swlab.provision.options import LOCAL_CLOUD_OPTIONS, VARIANT_FUNCTIONS, WEIGHTS, target_defaults
from swlab.provision.packaging import PackagingError
from swlab.provision.teardown import teardown
from swlab.settings import Settings, SettingsError, load_settings


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} must look like NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def _per_function(values: list[str], field: str) -> dict[str, dict[str, int]]:
    """``["*=512", "resnet=3008"]`` → ``{"*": {field: 512}, "resnet": {field: 3008}}``."""
    return {name: {field: int(v)} for name, v in _pairs(values, f"--{field.split('_')[0]}").items()}


def _reserved(values: list[str]) -> dict[str, int] | None:
    """``["resnet=2", "*=1"]`` → ``{"resnet": 2, "*": 1}``; ``["none"]`` → ``{}``; ``[]`` → None (the default)."""
    if values == ["none"]:
        return {}
    return {name: int(v) for name, v in _pairs(values, "--reserved-concurrency").items()} or None


def _reservations(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The options ``reserved_concurrency`` and ``model_reserved_concurrency`` the arguments ask for.

    ``--reserved-concurrency`` alone replaces the default bound of the torch functions (as it always
    has); ``none`` reserves nothing. The default bound: the local cloud's, on the local target only."""
    per_function = _reserved(args.reserved_concurrency)
    if args.model_reserved_concurrency is not None:
        model = None if args.model_reserved_concurrency == "none" else int(args.model_reserved_concurrency)
    elif per_function is not None:
        model = None
    else:
        model = _target_defaults(settings).get("model_reserved_concurrency")
    return {"reserved_concurrency": per_function or {}, "model_reserved_concurrency": model}


def _target_defaults(settings: Settings) -> dict[str, Any]:
    """What a deploy to the local cloud needs; nothing on AWS (:data:`~swlab.provision.options.TARGET_DEFAULTS`)."""
    return target_defaults(settings.target)


def _merge(*overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for o in overrides:
        for name, values in o.items():
            out.setdefault(name, {}).update(values)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swlab-deploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    deploy_p, teardown_p = (
        sub.add_parser("deploy", help="create or update the stack"),
        sub.add_parser("teardown", help="delete everything the stack holds and check nothing is left"),
    )
    for p in (deploy_p, teardown_p):
        p.add_argument("--target", choices=("local", "aws"))
        p.add_argument("--region")
        p.add_argument("--stack")
        p.add_argument("--endpoint-url")
        p.add_argument("--runs-dir")
        p.add_argument("--outputs", type=Path, help="outputs file (default runs/deploy/<stack>-<target>.json)")
        p.add_argument(
            "--wait",
            type=float,
            default=600.0,
            metavar="S",
            help="wait up to S seconds for another deploy/teardown of the same stack (0: refuse at once)",
        )
    deploy_p.add_argument("--workflow-type", choices=("EXPRESS", "STANDARD"), default="EXPRESS")
    deploy_p.add_argument(
        "--memory",
        action="append",
        default=[],
        metavar="FN=MB",
        help="memory size per function ('*' for all), repeatable",
    )
    deploy_p.add_argument("--timeout", action="append", default=[], metavar="FN=S", help="timeout per function")
    deploy_p.add_argument(
        "--placeholder",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a ${NAME} in function.json, e.g. AllowedHosts=127.0.0.1:8765",
    )
    deploy_p.add_argument("--lambdas-dir", type=Path)
    deploy_p.add_argument("--asl", type=Path, help="state machine definition (default asl/classify.asl.json)")
    deploy_p.add_argument(
        "--cache-dir", type=Path, help="installed dependencies and built zips (default ~/.cache/swlab/lambda-deps)"
    )
    deploy_p.add_argument(
        "--reserved-concurrency",
        action="append",
        default=[],
        metavar="FN=N",
        help="reserved concurrency per function ('*' for all), repeatable; 'none' reserves "
        "nothing. Replaces the torch functions' default bound (see the next option)",
    )
    deploy_p.add_argument(
        "--model-reserved-concurrency",
        metavar="N|none",
        help="reserved concurrency of each torch function (packaging image). Default: "
        f"{LOCAL_CLOUD_OPTIONS['model_reserved_concurrency']} on the local target, none on AWS",
    )
    deploy_p.add_argument(
        "--tls-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="deny plain-HTTP requests with a bucket policy. Default: on AWS only (the local cloud speaks plain HTTP)",
    )
    deploy_p.add_argument(
        "--preprocessing",
        choices=tuple(VARIANT_FUNCTIONS["preprocessing"]),
        help="Workflow 2's preprocessing: four step functions (steps, default) or one fused function (fused)",
    )
    deploy_p.add_argument(
        "--inference",
        choices=tuple(VARIANT_FUNCTIONS["inference"]),
        help="the models' runtime: torch (default; container images on AWS) or onnx (ONNX Runtime, zip packages)",
    )
    deploy_p.add_argument(
        "--weights",
        choices=WEIGHTS,
        help="model weights: auto (default: cache, else download, else seeded), pretrained (or fail), untrained",
    )
    deploy_p.add_argument("--throttle-rate", type=float)
    deploy_p.add_argument("--throttle-burst", type=int)
    deploy_p.add_argument("--json", action="store_true", help="print the outputs as JSON at the end")
    teardown_p.add_argument("--verify-timeout", type=float, help="seconds to wait for the tag listing to empty")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(_parser().parse_args(argv))
    except (SettingsError, PackagingError, AslError, StackBusy, WeightsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(
        target=args.target, region=args.region, stack=args.stack, endpoint_url=args.endpoint_url, runs_dir=args.runs_dir
    )
    print(f"==> {args.command} stack {settings.stack} on {settings.target} ({settings.region})", file=sys.stderr)
    with stack_lock(settings, args.command, wait_s=args.wait, say=lambda line: print(line, file=sys.stderr)):
        if args.command == "deploy":
            return _deploy(settings, args)
        return _teardown(settings, args)


def _teardown(settings: Settings, args: argparse.Namespace) -> int:
    report = teardown(settings, progress=print, outputs_path=args.outputs, verify_timeout_s=args.verify_timeout)
    failed = [c for c in report.deleted if c.action == "failed"]
    print(
        f"==> teardown: {len(report.deleted) - len(failed)} deleted, {len(failed)} failed, "
        f"{len(report.remaining)} remaining, {report.elapsed_s:.1f} s",
        file=sys.stderr,
    )
    return 0 if report.clean and not failed else 1


def _deploy(settings: Settings, args: argparse.Namespace) -> int:
    tls_only = _target_defaults(settings).get("tls_only", True) if args.tls_only is None else args.tls_only
    result = deploy(
        settings,
        progress=print,
        workflow_type=args.workflow_type,
        lambdas_dir=args.lambdas_dir,
        asl_path=args.asl,
        outputs_path=args.outputs,
        cache_dir=args.cache_dir,
        throttle_rate=args.throttle_rate,
        throttle_burst=args.throttle_burst,
        preprocessing=args.preprocessing,
        inference=args.inference,
        weights=args.weights,
        placeholders=_pairs(args.placeholder, "--placeholder") or None,
        tls_only=tls_only,
        **_reservations(args, settings),
        function_overrides=_merge(_per_function(args.memory, "memory_mb"), _per_function(args.timeout, "timeout_s"))
        or None,
    )
    print(
        f"==> deploy: {result.report.summary()} in {result.elapsed_s:.1f} s; outputs {result.outputs_path}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result.outputs.to_dict(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
