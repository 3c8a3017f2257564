"""Reserved concurrency and the TLS-only policy chosen per deploy: options, set by whoever deploys (profiles,
the CLI's target defaults), never by a branch on the target inside provisioning."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from swlab.provision import cli
from swlab.provision.options import LOCAL_CLOUD_OPTIONS, DeployOptions, reserved_concurrency_for
from swlab.provision.packaging import FunctionConfig
from swlab.run import provisioning, rundir
from swlab.settings import load_settings

pytestmark = pytest.mark.unit

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def config(name: str, packaging: str) -> FunctionConfig:
    fields = {f: None for f in FunctionConfig.__dataclass_fields__}
    fields.update(name=name, packaging=packaging)
    return FunctionConfig(**fields)


def test_the_defaults_are_the_safe_aws_ones():
    options = DeployOptions()
    assert options.tls_only is True
    assert reserved_concurrency_for(options, config("resnet", "image")) is None
    assert reserved_concurrency_for(options, config("grayscale", "zip")) is None


def test_the_local_cloud_options_bound_the_torch_functions_only():
    options = DeployOptions(**LOCAL_CLOUD_OPTIONS)
    assert options.tls_only is False
    assert reserved_concurrency_for(options, config("resnet", "image")) == 2
    assert reserved_concurrency_for(options, config("grayscale", "zip")) is None


@pytest.mark.parametrize("model", [None, 2])
def test_an_explicit_mapping_wins_over_the_model_bound(model):
    options = DeployOptions(reserved_concurrency={"*": 4, "resnet": 1}, model_reserved_concurrency=model)
    assert reserved_concurrency_for(options, config("resnet", "image")) == 1
    assert reserved_concurrency_for(options, config("alexnet", "image")) == 4
    assert reserved_concurrency_for(options, config("flip", "zip")) == 4
    named = DeployOptions(reserved_concurrency={"flip": 3}, model_reserved_concurrency=model)
    assert reserved_concurrency_for(named, config("resnet", "image")) == model


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_reserved_concurrency_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="reserved concurrency"):
        DeployOptions(reserved_concurrency={"resnet": value})
    with pytest.raises(ValueError, match="reserved concurrency"):
        DeployOptions(model_reserved_concurrency=value)


@pytest.mark.parametrize("profile", ["mission", "ci"])
def test_the_profiles_leave_the_local_cloud_options_to_the_target(profile):
    """So ``run-lab --profile mission --target aws`` deploys AWS's safe defaults, not the local cloud's."""
    parameters = yaml.safe_load((PROFILES / f"{profile}.yaml").read_text())["parameters"]
    assert not set(parameters) & set(LOCAL_CLOUD_OPTIONS)
    assert not set(parameters.get("deploy_options", {})) & set(LOCAL_CLOUD_OPTIONS)


def test_a_run_deploys_with_its_targets_defaults_under_its_own_options(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(provisioning, "deploy", lambda settings, **kw: calls.append(kw) or kw)
    for target, own, expected in (
        ("local", {}, LOCAL_CLOUD_OPTIONS),
        ("aws", {}, {}),
        ("local", {"model_reserved_concurrency": 4}, {"tls_only": False, "model_reserved_concurrency": 4}),
    ):
        run = rundir.start_run(
            tmp_path / f"{target}-{len(calls)}",
            load_settings(env={}, target=target, region="us-east-1", runs_dir=tmp_path),
        )
        provisioning.Deployment(run, deploy_options=own, progress=None).deploy()
        got = {k: calls[-1][k] for k in ("tls_only", "model_reserved_concurrency") if k in calls[-1]}
        assert got == expected


def reservations(target: str, *argv: str) -> dict:
    settings = load_settings(env={}, target=target, region="us-east-1")
    return cli._reservations(cli._parser().parse_args(["deploy", *argv]), settings)


def test_the_cli_applies_the_local_cloud_options_on_the_local_target_only():
    assert reservations("local") == {"reserved_concurrency": {}, "model_reserved_concurrency": 2}
    assert reservations("aws") == {"reserved_concurrency": {}, "model_reserved_concurrency": None}
    assert cli._target_defaults(load_settings(env={}, target="local")) == LOCAL_CLOUD_OPTIONS
    assert cli._target_defaults(load_settings(env={}, target="aws", region="us-east-1")) == {}


def test_the_cli_per_function_values_replace_the_model_bound_and_none_reserves_nothing():
    assert reservations("local", "--reserved-concurrency", "resnet=1") == {
        "reserved_concurrency": {"resnet": 1},
        "model_reserved_concurrency": None,
    }
    assert reservations("local", "--reserved-concurrency", "none") == {
        "reserved_concurrency": {},
        "model_reserved_concurrency": None,
    }
    assert reservations("aws", "--model-reserved-concurrency", "3") == {
        "reserved_concurrency": {},
        "model_reserved_concurrency": 3,
    }
    assert reservations("local", "--model-reserved-concurrency", "none")["model_reserved_concurrency"] is None
