"""Test helper (not a test module): import the lab's Lambda code the way a zip would lay it out.

Each function's folder and ``lambdas/_shared`` become top-level import paths,
exactly as in the deployed zip; handlers are loaded under unique module names
(every function has a ``handler.py``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
REGION = "us-east-1"


def add_paths(*functions: str) -> None:
    for folder in (LAMBDAS / "_shared", *(LAMBDAS / f for f in functions)):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def aws_calls_lines(stdout: str) -> list[dict]:
    """The ``aws_calls`` records a handler printed (one per invocation that called AWS), as the cost model reads them."""
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [
        {"calls": r["calls"], "capacity_units": r["capacity_units"]} for r in records if r["message"] == "aws_calls"
    ]


def load_handler(function: str) -> ModuleType:
    """Import ``lambdas/<function>/handler.py`` afresh (module-scope clients and config are rebuilt)."""
    add_paths(function)
    spec = importlib.util.spec_from_file_location(f"handler_{function}", LAMBDAS / function / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def make_stack(
    s3: Any, ddb: Any, bucket: str = "swlab-test-bucket", table: str = "swlab-test-images"
) -> tuple[str, str]:
    """The bucket and table the functions use (inside a moto mock)."""
    s3.create_bucket(Bucket=bucket)
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "image_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
    )
    return bucket, table


class FakeClassifier:
    """A runtime registered like an ONNX one would be: same interface, no torch."""

    loads = 0

    def __init__(self, spec, cfg, s3=None):
        FakeClassifier.loads += 1
        self.spec, self.weights, self.load_ms = spec, "untrained", 1.0
        self.categories = [f"class{i}" for i in range(10)]

    def probabilities(self, batch):
        assert batch.shape == (1, 3, 224, 224)
        return [i / 45 for i in range(10)]
