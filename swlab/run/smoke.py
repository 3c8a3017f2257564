"""The smoke test's pieces: one image through both workflows over HTTP, and what to show of it.

Used by ``notebooks/02_smoke_test.ipynb``. Works for both targets and both
state machine types: the outcome of Workflow 2 is read from the image's
DynamoDB item (status ``CLASSIFIED`` or ``FAILED``), which a Standard execution
writes after ``/classify`` has already answered with the execution's ARN.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from boto3.dynamodb.types import TypeDeserializer
from matplotlib.figure import Figure

# The images the Workflow 2 steps leave under processed/<image_id>/, in order (see lambdas/_shared/swl_s3.py).
STEPS = ("original", "grayscale", "flip", "rotate", "resize")
DONE_STATUSES = ("CLASSIFIED", "FAILED")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    elapsed_ms: float


def post(url: str, body: dict[str, Any], api_key: str, timeout_s: float = 120.0) -> Answer:
    """``POST`` JSON with the API key (header ``x-api-key``); the answer's status, JSON body and time."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-api-key": api_key},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status, parsed, round(elapsed_ms, 1))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def get_image_item(ddb: Any, table: str, image_id: str) -> dict[str, Any] | None:
    """The image's item as plain Python values (numbers as int/float), or ``None``."""
    item = ddb.get_item(TableName=table, Key={"image_id": {"S": image_id}}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    deserialize = TypeDeserializer().deserialize
    return {k: _plain(deserialize(v)) for k, v in item.items()}


def wait_for_outcome(
    ddb: Any, table: str, image_id: str, timeout_s: float = 180.0, poll_s: float = 0.5
) -> dict[str, Any]:
    """Poll the item until Workflow 2 has written its outcome (CLASSIFIED or FAILED)."""
    deadline = time.monotonic() + timeout_s
    while True:
        item = get_image_item(ddb, table, image_id)
        if item and item.get("status") in DONE_STATUSES:
            return item
        if time.monotonic() >= deadline:
            state = item.get("status") if item else "no item"
            raise TimeoutError(f"image {image_id} not classified after {timeout_s:.0f} s (status: {state})")
        time.sleep(poll_s)


def labels_table(item: dict[str, Any]) -> pd.DataFrame:
    """One row per model and rank: label and probability (from the item's ``labels``)."""
    rows = [
        {"model": model, "rank": rank, "label": entry["label"], "probability": entry["probability"]}
        for model, top in sorted((item.get("labels") or {}).items())
        for rank, entry in enumerate(top, start=1)
    ]
    return pd.DataFrame(rows, columns=["model", "rank", "label", "probability"])


def step_images_figure(s3: Any, bucket: str, image_id: str, steps: tuple[str, ...] = STEPS) -> Figure:
    """The image after each preprocessing step, side by side (a missing step is shown as missing)."""
    from PIL import Image

    fig = Figure(figsize=(2.6 * len(steps), 3.0), layout="constrained")
    for ax, step in zip(fig.subplots(1, len(steps), squeeze=False)[0], steps):
        key = f"processed/{image_id}/{step}.png"
        try:
            image = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            ax.imshow(image, cmap="gray" if image.mode in ("L", "LA") else None)
            ax.set_title(f"{step}\n{image.width}×{image.height} {image.mode}", fontsize=9)
        except s3.exceptions.NoSuchKey:
            ax.text(0.5, 0.5, "missing", ha="center", va="center", color="red")
            ax.set_title(step, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"image {image_id}: after each step of Workflow 2", fontsize=10)
    return fig
