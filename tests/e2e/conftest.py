"""The e2e tier's shared stack: the lab's real functions deployed once per session on the local cloud.

Every e2e module that needs the workflows uses ``stack`` (deployed outputs),
``ingested`` (five sample images ingested over HTTP) and ``warm`` (one
classification done), so torch environments start once per session rather
than once per module. Tests that tear the stack down are moved to the end of
the session (:func:`pytest_collection_modifyitems`); the session fixture tears
down again at exit (a no-op when already done).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_helpers import post

from swlab.provision import deploy as deploy_mod
from swlab.provision.teardown import teardown
from swlab.samples import ImageServer, list_samples

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
STACK = "e2e"


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that tear the shared stack down (``test_teardown*`` here) after all others."""
    here = Path(__file__).parent
    last = [i for i in items if Path(str(i.fspath)).parent == here and i.name.startswith("test_teardown")]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(scope="session")
def images():
    """The lab's local image server (sample photos and bad inputs), on 127.0.0.1."""
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="session")
def settings(lab_settings, tmp_path_factory):
    return lab_settings.with_(stack=STACK, runs_dir=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def options(images):
    return deploy_mod.DeployOptions(
        lambdas_dir=LAMBDAS_DIR, placeholders={"AllowedHosts": images.allowed_host}, **deploy_mod.LOCAL_CLOUD_OPTIONS
    )


@pytest.fixture(scope="session")
def stack(settings, options):
    """The deployed stack's outputs (local cloud options: reserved concurrency 2 per model function)."""
    result = deploy_mod.deploy(settings, options, progress=lambda line: None)
    yield result.outputs
    teardown(settings, progress=lambda line: None)


@pytest.fixture(scope="session")
def ingested(stack, images):
    """image_id of each of five samples, ingested over HTTP."""
    ids = {}
    for sample in list_samples()[:5]:
        status, body = post(
            stack.api["endpoints"]["ingest"], {"image_url": images.url(f"/samples/{sample.file}")}, stack.api["api_key"]
        )
        assert status == 201, body
        ids[sample.name] = body["image_id"]
    return ids


@pytest.fixture(scope="session")
def warm(aws, stack, ingested):
    """One classification through the SDK first: three cold torch environments starting at once on this
    2-core machine take longer than API Gateway's 29 s integration timeout (a cold /classify answers 504)."""
    sfn = aws("stepfunctions", read_timeout=300)
    result = sfn.start_sync_execution(
        stateMachineArn=stack.state_machine["arn"], input=json.dumps({"image_id": next(iter(ingested.values()))})
    )
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    return result
