"""Each execution environment is its own sandbox: a private, empty, size-limited /tmp, no emulator variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import environments, invoke_json, wait_for

pytestmark = pytest.mark.functional


def test_each_environment_has_a_private_empty_tmp_removed_when_it_ends(aws, deploy_probe, local_cloud):
    lam = aws("lambda")
    first, second = deploy_probe("tmp"), deploy_probe("tmp")
    _, a = invoke_json(lam, first, {"marker": "from-a"})
    _, b = invoke_json(lam, second, {"marker": "from-b"})
    assert a["tmp"] != b["tmp"] and a["before"] == [] and b["before"] == []  # private and empty
    assert a["tmp"] != "/tmp" and Path(a["tmp"]).is_dir()
    _, again = invoke_json(lam, first, {"marker": "again"})
    assert again["tmp"] == a["tmp"] and "from-a" in again["before"]  # kept for the warm environment's life
    lam.delete_function(FunctionName=first)
    assert wait_for(lambda: not os.path.exists(a["tmp"]), 10), "the /tmp went with its environment"


def test_no_local_cloud_variable_and_runtime_api_as_aws_formats_it(aws, deploy_probe):
    _, out = invoke_json(aws("lambda"), deploy_probe("tmp"))
    assert out["own_vars"] == []
    assert re.fullmatch(r"127\.0\.0\.1:\d+", out["runtime_api"])


def test_the_code_is_left_as_deployed_no_bytecode_written_next_to_it(aws, deploy_probe):
    """AWS's /var/task is read-only: Python compiles the zip's sources at every cold start and writes no
    __pycache__. Before, the first environment wrote one and later cold starts skipped the compiling."""
    _, out = invoke_json(aws("lambda"), deploy_probe("tmp"))
    assert out["dont_write_bytecode"] == 1 and out["task_root_pycache"] is False


def test_writing_past_the_ephemeral_storage_size_ends_the_environment(aws, deploy_probe, local_cloud):
    lam = aws("lambda")
    name = deploy_probe("tmp", Timeout=30, EphemeralStorage={"Size": 512})
    resp, out = invoke_json(lam, name, {"write_mb": 600, "hold_s": 5})
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.ExitError", out
    assert wait_for(lambda: environments(local_cloud.endpoint_url, name) == [], 10)
    resp, out = invoke_json(lam, name, {"write_mb": 100})  # within the size: fine, in a fresh environment
    assert "FunctionError" not in resp and out["before"] == []
