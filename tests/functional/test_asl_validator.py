"""Every generated state machine definition passes AWS's ``asl-validator`` (npm, run with Node), offline.

The validator is installed on first use into ``.cache/npm`` (``npm install --prefix .cache/npm
asl-validator@4.0.0``), so a clean clone needs only Node and npm. Without them the test is skipped with
one line, except in CI (``CI=true``), where it fails. Each definition is rendered the way the deploy
renders it (every placeholder filled with the stack's names and function ARNs); EXPRESS and STANDARD use
the same definition.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from swlab.provision import asl
from swlab.provision.naming import Names
from swlab.provision.state_machine import load_definition, state_machine_values

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = "asl-validator@4.0.0"
PREFIX = ROOT / ".cache" / "npm"
DEFINITIONS = sorted((ROOT / "asl").glob("*.asl.json")) + sorted((ROOT / "tests" / "fixtures" / "asl").glob("*.json"))


@pytest.fixture(scope="session")
def asl_validator() -> Path:
    binary = PREFIX / "node_modules" / ".bin" / "asl-validator"
    if binary.exists():
        return binary
    if not (shutil.which("node") and shutil.which("npm")):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must check the state machines with asl-validator: install Node.js and npm")
        pytest.skip("asl-validator not checked: Node.js/npm not found (install nodejs and npm)")
    PREFIX.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), VALIDATOR],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and binary.exists(), done.stderr[-2000:]
    return binary


def rendered(path: Path) -> str:
    names = Names("lab", "123456789012", "us-east-1")
    functions = {
        p.name: {"arn": f"arn:aws:lambda:us-east-1:123456789012:function:lab-{p.name}"}
        for p in (ROOT / "lambdas").iterdir()
        if (p / "function.json").exists()
    }
    functions.update({n: {"arn": f"arn:aws:lambda:us-east-1:123456789012:function:lab-{n}"} for n in ("echo", "model")})
    return load_definition(path, state_machine_values(names, functions))


@pytest.mark.parametrize("path", DEFINITIONS, ids=[str(p.relative_to(ROOT)) for p in DEFINITIONS])
def test_definition_passes_asl_validator(asl_validator, path, tmp_path):
    definition = rendered(path)
    assert not asl.PLACEHOLDER.search(definition)
    target = tmp_path / "definition.json"
    target.write_text(definition)
    done = subprocess.run([str(asl_validator), "--json-path", str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_does_refuse_a_broken_definition(asl_validator, tmp_path):
    broken = json.loads(rendered(DEFINITIONS[0]))
    broken["StartAt"] = "NoSuchState"
    target = tmp_path / "broken.json"
    target.write_text(json.dumps(broken))
    done = subprocess.run([str(asl_validator), "--json-path", str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
