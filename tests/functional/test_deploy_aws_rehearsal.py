"""A rehearsal of the AWS target's deploy and teardown, offline: the lab's real functions against moto.

No AWS account is available here, so the code paths that only run with
``target="aws"`` are exercised against moto in-process (``mock_aws``): container
images in ECR for the torch functions, the TLS-only bucket policy, no reserved
concurrency, the public execute-api URL, and a teardown that leaves nothing,
ECR repositories included. Docker is the one stand-in: ``build`` records its
context and ``push`` puts a manifest into moto's ECR, as a registry push would.
What this cannot show (IAM propagation delays, real image builds, the Lambda
service pulling the image) is listed in the README's AWS section.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto import mock_aws

from swlab.provision import deploy as deploy_mod
from swlab.provision import images
from swlab.provision.teardown import teardown
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
MODELS = ("alexnet", "resnet", "mobilenet")
REGION = "eu-west-1"


class FakeDocker:
    """``docker build`` / ``login`` / ``push`` as seen by the registry (moto's ECR)."""

    def __init__(self, settings) -> None:
        self.settings, self.calls, self.contexts = settings, [], {}

    def run(self, *args: str) -> None:
        self.calls.append(args[0])
        if args[0] == "build":
            ctx, image = Path(args[-1]), args[args.index("-t") + 1]
            self.contexts[image] = {p.name: p.read_text() for p in ctx.iterdir()}
            self.contexts[image]["--platform"] = args[args.index("--platform") + 1]
        elif args[0] == "push":
            repo_uri, tag = args[1].rsplit(":", 1)
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{tag:0<64}"},
                "layers": [],
            }
            client(self.settings, "ecr").put_image(
                repositoryName=repo_uri.split("/", 1)[1], imageTag=tag, imageManifest=json.dumps(manifest)
            )

    def login(self, clients, registry: str) -> None:
        self.calls.append("login")


@pytest.fixture()
def aws_env(monkeypatch, tmp_path):
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        settings = load_settings(env={}, target="aws", region=REGION, stack="rehearse", runs_dir=tmp_path / "runs")
        docker = FakeDocker(settings)
        monkeypatch.setattr(images, "docker_available", lambda: True)
        monkeypatch.setattr(images, "_docker", docker.run)
        monkeypatch.setattr(images, "_docker_login", docker.login)
        yield settings, docker


def options(tmp_path: Path) -> deploy_mod.DeployOptions:
    return deploy_mod.DeployOptions(lambdas_dir=LAMBDAS, cache_dir=tmp_path / "deps", placeholders={"AllowedHosts": ""})


def test_deploy_and_teardown_on_the_aws_target(aws_env, tmp_path):
    settings, docker = aws_env
    out = deploy_mod.deploy(settings, options(tmp_path), progress=lambda line: None).outputs
    lam, ecr = client(settings, "lambda"), client(settings, "ecr")

    # The torch functions are container images pushed to one ECR repository each; the rest are zips.
    assert docker.calls == ["build", "login", "push"] * len(MODELS)
    for name, fn in out.functions.items():
        cfg = lam.get_function(FunctionName=fn["function_name"])
        if name in MODELS:
            uri = cfg["Code"]["ImageUri"]
            repo = f"{out.account_id}.dkr.ecr.{REGION}.amazonaws.com/rehearse-{name}"
            assert uri.startswith(f"{repo}@sha256:"), uri
            assert cfg["Configuration"]["PackageType"] == "Image"
            tags = {
                t["Key"]: t["Value"]
                for t in ecr.list_tags_for_resource(
                    resourceArn=ecr.describe_repositories(repositoryNames=[f"rehearse-{name}"])["repositories"][0][
                        "repositoryArn"
                    ]
                )["tags"]
            }
            assert tags.get("swlab:stack") == "rehearse", tags
        else:
            assert cfg["Configuration"]["PackageType"] == "Zip" and cfg["Configuration"]["Runtime"] == "python3.11"
        # AWS: nothing reserved unless asked (the local target's limit of 2 protects a laptop's memory).
        assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=fn["function_name"])

    # Each image's build context: the function's code, its pinned requirements, a Dockerfile on AWS's base image.
    ((image, ctx),) = [(i, c) for i, c in docker.contexts.items() if "/rehearse-alexnet:" in i]
    assert ctx["--platform"] == "linux/amd64"
    assert {"Dockerfile", "requirements.txt", "handler.py", "alexnet.py", "swl_infer.py"} <= set(ctx)
    assert ctx["Dockerfile"].startswith("FROM public.ecr.aws/lambda/python:3.11\n")
    assert 'CMD ["handler.handler"]' in ctx["Dockerfile"]
    assert f"--extra-index-url {images.TORCH_CPU_INDEX}" in ctx["Dockerfile"]  # CPU wheels, no CUDA
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= set(ctx["requirements.txt"].split())

    # Private bucket that refuses plain HTTP; public execute-api URLs.
    s3 = client(settings, "s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=out.bucket)["Policy"])
    assert any(
        st["Effect"] == "Deny" and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for st in policy["Statement"]
    ), policy
    assert out.bucket_tls_only is True
    block = s3.get_public_access_block(Bucket=out.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block
    assert out.api["endpoints"]["classify"].startswith(
        f"https://{out.api['id']}.execute-api.{REGION}.amazonaws.com/"
    ), out.api

    # Deploying again rebuilds nothing: the image tag is the hash of its build context and it is in ECR.
    docker.calls.clear()
    deploy_mod.deploy(settings, options(tmp_path), progress=lambda line: None)
    assert docker.calls == []

    report = teardown(settings, progress=lambda line: None, verify_timeout_s=0)
    assert report.clean and sum(c.kind == "ecr repository" for c in report.deleted) == len(MODELS), report.as_dict()
    assert ecr.describe_repositories()["repositories"] == []
    assert lam.list_functions()["Functions"] == []


def test_a_push_that_ecr_does_not_list_is_a_clear_error(aws_env, tmp_path, monkeypatch):
    settings, docker = aws_env
    monkeypatch.setattr(images, "_docker", lambda *args: docker.calls.append(args[0]))  # push is lost
    with pytest.raises(images.PackagingError, match="succeeded but ECR does not list the image"):
        deploy_mod.deploy(settings, options(tmp_path), progress=lambda line: None)
    assert teardown(settings, progress=lambda line: None, verify_timeout_s=0).clean


def test_every_deploy_and_teardown_call_matches_botocores_service_models(aws_env, tmp_path, monkeypatch):
    """Each AWS call the deploy and the teardown make, with parameter validation on as on AWS: the operation
    exists in the pinned botocore's service model and its parameters validate against the input shape."""
    from botocore.client import BaseClient
    from botocore.validate import ParamValidator

    settings, _ = aws_env
    calls: list[tuple[str, str, bool, str]] = []
    original = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        model = self.meta.service_model.operation_model(operation_name)  # KeyError if botocore lacks it
        report = ParamValidator().validate(api_params, model.input_shape)
        problems = report.generate_report() if report.has_errors() else ""
        calls.append(
            (self.meta.service_model.service_name, operation_name, self.meta.config.parameter_validation, problems)
        )
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    deploy_mod.deploy(settings, options(tmp_path), progress=lambda line: None)
    teardown(settings, progress=lambda line: None, verify_timeout_s=0)

    services = {c[0] for c in calls}
    assert {"s3", "dynamodb", "iam", "lambda", "stepfunctions", "apigateway", "ecr", "logs"} <= services, services
    assert [c for c in calls if c[2] is not True] == []  # parameter validation was never turned off
    assert [c for c in calls if c[3]] == []


def test_the_fused_and_onnx_variants_deploy_as_zips_and_switch_back(aws_env, tmp_path):
    """preprocessing=fused x inference=onnx on the AWS target: no Docker at all (the ONNX functions are zips
    within Lambda's limits), only the chosen variant's functions; switching back prunes them."""
    settings, docker = aws_env
    keys = {f"{m.capitalize()}OnnxKey": f"models/{m}.onnx" for m in MODELS}
    base = options(tmp_path)
    variant = deploy_mod.DeployOptions(
        lambdas_dir=LAMBDAS,
        cache_dir=tmp_path / "deps",
        placeholders={**base.placeholders, **keys},
        preprocessing="fused",
        inference="onnx",
    )
    out = deploy_mod.deploy(settings, variant, progress=lambda line: None).outputs
    assert docker.calls == []
    onnx = {f"{m}_onnx" for m in MODELS}
    assert onnx | {"preprocess", "classifications"} <= set(out.functions)
    assert not {"grayscale", "flip", "rotate", "resize", *MODELS} & set(out.functions)
    lam, sfn = client(settings, "lambda"), client(settings, "stepfunctions")
    for name in onnx:
        fn = out.functions[name]
        cfg = lam.get_function(FunctionName=fn["function_name"])["Configuration"]
        assert cfg["PackageType"] == "Zip" and 0 < fn["code_bytes"] <= 50 * 2**20, fn
        assert cfg["Environment"]["Variables"]["MODEL_WEIGHTS_KEY"] == f"models/{name[:-5]}.onnx"
    definition = sfn.describe_state_machine(stateMachineArn=out.state_machine["arn"])["definition"]
    assert out.functions["preprocess"]["arn"] in definition and out.functions["alexnet_onnx"]["arn"] in definition
    assert "Grayscale" not in json.loads(definition)["States"]
    assert set(out.api["endpoints"]) >= {"classify", "classifications", "images"}

    back = deploy_mod.deploy(settings, base, progress=lambda line: None)
    deleted = {c.name for c in back.report.changes if c.kind == "lambda function" and c.action == "deleted"}
    assert deleted == {f"rehearse-{f}" for f in onnx | {"preprocess"}}
    assert teardown(settings, progress=lambda line: None, verify_timeout_s=0).clean
