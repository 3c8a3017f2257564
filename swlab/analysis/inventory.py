"""What the run stored, for the reconciliation (:mod:`swlab.analysis.reconcile`): its items and raw objects.

The run's images are the ids JMeter saw (``/ingest`` 201s, ``/classify`` rows) plus every ``raw/`` object
written in the window. Their items come from ``BatchGetItem`` (strongly consistent, 100 keys a call: about
half a read unit per item on AWS, no Scan); each raw object — the item's ``key`` and every object listed —
gets one ``HeadObject``: its size and the ``sha256`` ingest stored in the object's metadata, which is what
AWS offers without reading the object back (a GET of every image would cost its transfer).
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
from botocore.exceptions import ClientError

from swlab.analysis.reconcile import workflow_of

ITEM_COLUMNS = ["image_id", "key", "bytes", "sha256", "status", "error"]
OBJECT_COLUMNS = ["key", "size", "sha256"]
RAW_PREFIX = "raw/"


def run_image_ids(jtl: pd.DataFrame | None, raw_keys: Iterable[str]) -> list[str]:
    """Every image id the run touched: ingest's 201s, classify's rows, the raw objects written."""
    ids: set[str] = {k.rsplit("/", 1)[-1].split(".", 1)[0] for k in raw_keys}
    if jtl is not None and not jtl.empty:
        wf = workflow_of(jtl)
        created = jtl[(wf == "wf1") & jtl["responseCode"].astype(str).str.startswith("201")]
        ids.update(str(v) for v in created.get("sample_id", []) if v)
        ids.update(str(v) for v in jtl[wf == "wf2"].get("row_value", []) if v)
    return sorted(i for i in ids if i)


def fetch_items(ddb: Any, table: str, image_ids: list[str]) -> pd.DataFrame:
    """The items of ``image_ids`` (absent ones are simply missing), plain values."""
    rows: list[dict] = []
    for start in range(0, len(image_ids), 100):
        request = {
            table: {
                "Keys": [{"image_id": {"S": i}} for i in image_ids[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        while request:
            page = ddb.batch_get_item(RequestItems=request)
            rows += [_plain(item) for item in page.get("Responses", {}).get(table, [])]
            request = page.get("UnprocessedKeys") or {}
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def head_objects(s3: Any, bucket: str, keys: Iterable[str]) -> pd.DataFrame:
    """Size and metadata sha256 of each key that exists."""
    rows = []
    for key in sorted(set(keys)):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                continue
            raise
        rows.append({"key": key, "size": int(head["ContentLength"]), "sha256": head.get("Metadata", {}).get("sha256")})
    return pd.DataFrame(rows, columns=OBJECT_COLUMNS)


def collect_inventory(
    ddb: Any, s3: Any, table: str, bucket: str, jtl: pd.DataFrame | None, objects_in_window: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, raw_objects) of the run's images."""
    listed = [k for k in objects_in_window.get("key", []) if str(k).startswith(RAW_PREFIX)]
    items = fetch_items(ddb, table, run_image_ids(jtl, listed))
    keys = listed + [k for k in items["key"] if isinstance(k, str) and k.startswith(RAW_PREFIX)]
    return items, head_objects(s3, bucket, keys)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ITEM_COLUMNS:
        value = item.get(name)
        if value is None:
            out[name] = None
        elif "N" in value:
            out[name] = int(float(value["N"]))
        else:
            out[name] = next(iter(value.values()))
    return out
