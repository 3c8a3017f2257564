"""A deploy that cannot succeed fails before it creates anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from swlab.provision import deploy as deploy_mod
from swlab.provision.asl import AslError
from swlab.provision.context import Clients
from swlab.provision.naming import Names
from swlab.provision.packaging import PackagingError
from swlab.provision.teardown import remaining

pytestmark = pytest.mark.functional

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STACK = "fxpreflight"


@pytest.fixture
def lambdas(tmp_path):
    shutil.copytree(FIXTURES / "lambdas", tmp_path / "lambdas")
    return tmp_path / "lambdas"


def assert_nothing_created(settings, aws):
    account = aws("sts").get_caller_identity()["Account"]
    assert remaining(Clients(settings, aws), Names(STACK, account, settings.region), settings) == []


def test_unknown_placeholder_fails_before_anything_is_created(lab_settings, aws, lambdas, tmp_path):
    config = json.loads((lambdas / "echo" / "function.json").read_text())
    config["environment"]["TYPO"] = "${Buckett}"
    (lambdas / "echo" / "function.json").write_text(json.dumps(config))
    settings = lab_settings.with_(stack=STACK, runs_dir=tmp_path)
    with pytest.raises(PackagingError, match=r"echo: environment TYPO: unknown placeholder \$\{Buckett\}"):
        deploy_mod.deploy(
            settings, lambdas_dir=lambdas, asl_path=FIXTURES / "asl" / "classify.asl.json", progress=lambda line: None
        )
    assert_nothing_created(settings, aws)


def test_state_machine_placeholder_without_a_function_fails_before_anything_is_created(
    lab_settings, aws, lambdas, tmp_path
):
    shutil.rmtree(lambdas / "model")  # the definition still names ${ModelArn}
    settings = lab_settings.with_(stack=STACK, runs_dir=tmp_path)
    with pytest.raises(AslError, match=r"no value for placeholder \$\{ModelArn\}"):
        deploy_mod.deploy(
            settings, lambdas_dir=lambdas, asl_path=FIXTURES / "asl" / "classify.asl.json", progress=lambda line: None
        )
    assert_nothing_created(settings, aws)
