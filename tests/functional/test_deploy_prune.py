"""A function whose folder is removed is removed from the stack by the next deploy (with its role and log group)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swlab.provision import deploy as deploy_mod
from swlab.provision.teardown import teardown

pytestmark = pytest.mark.functional

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STACK = "fxprune"


def test_removed_function_is_pruned_and_nothing_else_changes(lab_settings, aws, tmp_path):
    lambdas = tmp_path / "lambdas"
    shutil.copytree(FIXTURES / "lambdas", lambdas)
    shutil.copytree(lambdas / "echo", lambdas / "extra")
    settings = lab_settings.with_(stack=STACK, runs_dir=tmp_path / "runs")
    options = deploy_mod.DeployOptions(
        lambdas_dir=lambdas,
        asl_path=FIXTURES / "asl" / "classify.asl.json",
        cache_dir=tmp_path / "cache",
        **deploy_mod.LOCAL_CLOUD_OPTIONS,
    )
    try:
        first = deploy_mod.deploy(settings, options, progress=lambda line: None)
        assert "extra" in first.outputs.functions
        shutil.rmtree(lambdas / "extra")
        second = deploy_mod.deploy(settings, options, progress=lambda line: None)
        changed = [(c.kind, c.name, c.action) for c in second.report.changes if c.action != "unchanged"]
        assert changed == [
            ("iam role", f"{STACK}-states", "updated"),  # may no longer invoke it
            ("lambda function", f"{STACK}-extra", "deleted"),
            ("log group", f"/aws/lambda/{STACK}-extra", "deleted"),
            ("iam role", f"{STACK}-lambda-extra", "deleted"),
        ]
        functions = {f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]}
        assert f"{STACK}-extra" not in functions and f"{STACK}-echo" in functions
        assert not aws("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-extra")["logGroups"]
        assert f"{STACK}-lambda-extra" not in {r["RoleName"] for r in aws("iam").list_roles()["Roles"]}
        third = deploy_mod.deploy(settings, options, progress=lambda line: None)
        assert third.report.all_unchanged
    finally:
        assert teardown(settings, progress=lambda line: None).clean
