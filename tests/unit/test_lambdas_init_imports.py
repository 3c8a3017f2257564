"""What each function imports at init (its cold start pays for it at its memory size's share of a core).

The local cloud gives a 256 MB function 0.14 of a core during init as AWS does, so an import the
function never uses costs its CPU time divided by that share: boto3 and botocore are ~0.2 s of CPU,
~1.2 s of Init Duration at 256 MB. Each handler is imported in a fresh interpreter laid out as its
zip (its folder and ``lambdas/_shared`` first on the path) and its loaded modules are checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lambda_modules import LAMBDAS

pytestmark = pytest.mark.unit

PROBE = "import sys, json; import handler; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"


def init_modules(function: str, env: dict[str, str] | None = None) -> set[str]:
    """Top-level packages loaded once ``lambdas/<function>/handler.py`` was imported in a new interpreter."""
    path = os.pathsep.join([str(LAMBDAS / function), str(LAMBDAS / "_shared"), *sys.path[1:]])
    proc_env = {
        "PYTHONPATH": path,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": os.environ.get("PATH", ""),
        **(env or {}),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=LAMBDAS / function, env=proc_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_aggregate_loads_no_aws_sdk_at_init():
    """Aggregate calls no AWS service: importing its handler must not load boto3 or botocore."""
    loaded = init_modules("aggregate")
    assert "aggregate" in loaded and "swl_errors" in loaded
    assert not loaded & {"boto3", "botocore", "s3transfer", "swl_ddb"}
