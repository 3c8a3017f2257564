"""swlab.provision.outputs: the typed outputs record and its JSON file (format unchanged: the keys of schema 1)."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from swlab.provision import teardown
from swlab.provision.outputs import OUTPUTS_SCHEMA, DeployOutputs, load_outputs, write_outputs

pytestmark = pytest.mark.unit

KEYS = {
    "schema",
    "stack",
    "target",
    "region",
    "account_id",
    "endpoint_url",
    "deployed_at",
    "bucket",
    "bucket_tls_only",
    "table",
    "functions",
    "state_machine",
    "api",
    "changes",
}


def sample() -> DeployOutputs:
    return DeployOutputs(
        schema=OUTPUTS_SCHEMA,
        stack="swlab",
        target="local",
        region="us-east-1",
        account_id="123456789012",
        endpoint_url="http://127.0.0.1:4566",
        deployed_at="2026-01-01T00:00:00+00:00",
        bucket="swlab-images-123456789012-us-east-1",
        bucket_tls_only=False,
        table="swlab-images",
        functions={"ingest": {"function_name": "swlab-ingest", "reserved_concurrency": None}},
        state_machine={"name": "swlab-classify", "type": "EXPRESS"},
        api={"id": "a1", "endpoints": {"ingest": "http://x/ingest"}, "api_key": "k"},
        changes={"created": 3},
    )


def test_the_record_has_exactly_the_keys_of_the_json_file():
    assert {f.name for f in fields(DeployOutputs)} == KEYS


def test_written_outputs_read_back_equal_and_the_file_is_the_plain_json_document(tmp_path):
    path = tmp_path / "deploy" / "outputs.json"
    write_outputs(sample(), path)
    assert json.loads(path.read_text()) == sample().to_dict()
    loaded = load_outputs(path)
    assert loaded == sample() and loaded.api["endpoints"]["ingest"] == "http://x/ingest"


def test_another_schema_or_other_keys_are_refused(tmp_path):
    path = tmp_path / "outputs.json"
    write_outputs(replace(sample(), schema="swlab.deploy.outputs/0"), path)
    with pytest.raises(ValueError, match="schema"):
        load_outputs(path)
    with pytest.raises(ValueError, match="missing \\['table'\\]"):
        DeployOutputs.from_dict({k: v for k, v in sample().to_dict().items() if k != "table"})
    with pytest.raises(FileNotFoundError, match="deploy the stack first"):
        load_outputs(tmp_path / "nothing.json")


def test_teardown_walks_the_resource_modules_in_reverse_of_the_deploy():
    modules = [f.__module__.rsplit(".", 1)[1] for f in teardown.FINDERS]
    assert modules == [
        "api",
        "api",
        "api",
        "state_machine",
        "storage",
        "functions",
        "images",
        "roles",
        "storage",
        "storage",
    ]
    assert [f.__name__ for f in teardown.FINDERS][-2:] == ["find_tables", "find_buckets"]
