"""Reserved concurrency chosen per deploy: the target's default for torch functions, or what was asked."""

from __future__ import annotations

import pytest

from swlab import deploy as deploy_mod
from swlab.packaging import FunctionSpec
from swlab.settings import load_settings

pytestmark = pytest.mark.unit


def spec(name: str, packaging: str) -> FunctionSpec:
    fields = {f: None for f in FunctionSpec.__dataclass_fields__}
    fields.update(name=name, packaging=packaging)
    return FunctionSpec(**fields)


@pytest.mark.parametrize("target, model, step", [("local", 2, None), ("aws", None, None)])
def test_default_bounds_torch_functions_on_the_local_cloud_only(target, model, step):
    settings = load_settings(env={}, target=target, region="us-east-1")
    options = deploy_mod.DeployOptions()
    assert deploy_mod.reserved_concurrency_for(settings, options, spec("resnet", "image")) == model
    assert deploy_mod.reserved_concurrency_for(settings, options, spec("grayscale", "zip")) == step


@pytest.mark.parametrize("target", ["local", "aws"])
def test_an_explicit_mapping_replaces_the_default(target):
    settings = load_settings(env={}, target=target, region="us-east-1")
    options = deploy_mod.DeployOptions(reserved_concurrency={"*": 4, "resnet": 1})
    assert deploy_mod.reserved_concurrency_for(settings, options, spec("resnet", "image")) == 1
    assert deploy_mod.reserved_concurrency_for(settings, options, spec("flip", "zip")) == 4
    none = deploy_mod.DeployOptions(reserved_concurrency={})
    assert deploy_mod.reserved_concurrency_for(settings, none, spec("resnet", "image")) is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "2"])
def test_reserved_concurrency_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="reserved concurrency"):
        deploy_mod.DeployOptions(reserved_concurrency={"resnet": value})
