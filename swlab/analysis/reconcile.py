"""Nothing lost: every request the load tests saw, reconciled with what the stack stored (pure pandas).

Inputs are the collected tables (:mod:`swlab.analysis.collect`):

* ``jtl``: JMeter's samples; a sample of ``/ingest`` answered 201 carries the returned image id in
  ``sample_id``; a sample of ``/classify`` carries the image id it asked for in ``row_value`` and, when
  the answer named it, the execution ARN in ``sample_id``;
* ``items``: the DynamoDB items of the run's images (``image_id``, ``key``, ``bytes``, ``sha256``,
  ``status``, ``error``);
* ``raw_objects``: the run's ``raw/`` objects (``key``, ``size``, ``sha256`` from the object's metadata,
  which ingest writes with the object);
* ``executions``: the state machine's executions in the window (``execution_arn``, ``status``,
  ``image_id``, ``error``).

Rules (:func:`reconcile`):

* Workflow 1: each 201 has exactly one item and one raw object, and they agree (key, size = bytes,
  sha256); no raw object of the run without its item, no item of the run without its object.
* Workflow 2: each request has a terminal execution (its own ARN, else one for its image) and its
  image's item a terminal status (``CLASSIFIED``, or ``FAILED`` with an ``error``); an execution that
  failed with ``ImageNotFound`` needs no item. A request refused with a 4xx never started anything and
  is accounted for by its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
TERMINAL_ITEM = {"CLASSIFIED", "FAILED"}
WORKFLOW_NAMES = {"wf1": "Workflow 1 (ingest)", "wf2": "Workflow 2 (classify)"}
EXCEPTION_COLUMNS = ["workflow", "request", "image_id", "problem"]


@dataclass
class Reconciliation:
    """Per workflow: requests and how many are accounted for; every exception with its reason."""

    requests: dict[str, int] = field(default_factory=dict)
    accounted: dict[str, int] = field(default_factory=dict)
    exceptions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCEPTION_COLUMNS))

    @property
    def lost(self) -> int:
        return len(self.exceptions)

    def lines(self) -> list[str]:
        out = [
            f"{WORKFLOW_NAMES.get(wf, wf)}: {self.accounted.get(wf, 0)} of {n} accounted for"
            for wf, n in self.requests.items()
        ]
        out += [f"  {r.workflow}: {r.request or r.image_id}: {r.problem}" for r in self.exceptions.itertuples()]
        return out

    def table(self) -> pd.DataFrame:
        """One row per workflow: requests, accounted, lost (the book's table)."""
        rows = [
            {
                "workflow": WORKFLOW_NAMES.get(wf, wf),
                "requests": n,
                "accounted": self.accounted.get(wf, 0),
                "lost": n - self.accounted.get(wf, 0),
            }
            for wf, n in self.requests.items()
        ]
        return pd.DataFrame(rows, columns=["workflow", "requests", "accounted", "lost"])

    @classmethod
    def from_tables(cls, summary: pd.DataFrame, exceptions: pd.DataFrame) -> "Reconciliation":
        """Back from the saved tables (``reconciliation``, ``reconciliation_exceptions``)."""
        back = {v: k for k, v in WORKFLOW_NAMES.items()}
        requests = {back.get(r.workflow, r.workflow): int(r.requests) for r in summary.itertuples()}
        accounted = {back.get(r.workflow, r.workflow): int(r.accounted) for r in summary.itertuples()}
        return cls(requests, accounted, exceptions.reindex(columns=EXCEPTION_COLUMNS))


def workflow_of(jtl: pd.DataFrame) -> pd.Series:
    """``wf1`` / ``wf2`` per sample, from the URL's last segment (else the sampler's label)."""
    url = jtl.get("URL", pd.Series("", index=jtl.index)).astype(str)
    label = jtl.get("label", pd.Series("", index=jtl.index)).astype(str)
    path = url.str.rsplit("/", n=1).str[-1].where(url != "", label)
    return path.map({"ingest": "wf1", "classify": "wf2"}).fillna("")


def reconcile(
    jtl: pd.DataFrame, items: pd.DataFrame, raw_objects: pd.DataFrame, executions: pd.DataFrame
) -> Reconciliation:
    """Account for every request of both workflows; list every exception."""
    jtl = jtl if not jtl.empty else pd.DataFrame(columns=["URL", "label", "responseCode", "sample_id", "row_value"])
    wf = workflow_of(jtl)
    result = Reconciliation()
    problems: list[dict[str, str]] = []
    items_by_id = {str(r["image_id"]): r for r in items.to_dict("records")} if not items.empty else {}
    objects = raw_objects.to_dict("records") if not raw_objects.empty else []
    objects_by_id: dict[str, list[dict]] = {}
    for obj in objects:
        objects_by_id.setdefault(_image_id_of_key(str(obj["key"])), []).append(obj)

    # Workflow 1: every 201 stored exactly once, item and object agreeing.
    ingest = jtl[wf == "wf1"]
    result.requests["wf1"] = len(ingest)
    created = set()
    for sample in ingest.to_dict("records"):
        code, image_id = str(sample.get("responseCode", "")), str(sample.get("sample_id") or "")
        if not code.startswith("201"):
            continue  # refused or failed, and the client was told: accounted for by its answer (orphans below)
        created.add(image_id)
        problem = _ingest_problem(image_id, items_by_id.get(image_id), objects_by_id.get(image_id, []))
        if problem:
            problems.append({"workflow": "wf1", "request": image_id, "image_id": image_id, "problem": problem})
    for image_id, objs in objects_by_id.items():
        if image_id not in created and image_id not in items_by_id:
            problems.append(
                {"workflow": "wf1", "request": objs[0]["key"], "image_id": image_id, "problem": "object without item"}
            )
    for image_id, item in items_by_id.items():
        if image_id not in created and not objects_by_id.get(image_id) and str(item.get("key", "")).startswith("raw/"):
            problems.append(
                {"workflow": "wf1", "request": image_id, "image_id": image_id, "problem": "item without object"}
            )
    result.accounted["wf1"] = len(ingest) - sum(
        1 for p in problems if p["workflow"] == "wf1" and p["request"] in created
    )

    # Workflow 2: every request ends in a terminal execution and a terminal item.
    classify = jtl[wf == "wf2"]
    result.requests["wf2"] = len(classify)
    by_arn = {str(r["execution_arn"]): r for r in executions.to_dict("records")} if not executions.empty else {}
    by_image: dict[str, list[dict]] = {}
    for ex in by_arn.values():
        by_image.setdefault(str(ex.get("image_id") or ""), []).append(ex)
    lost_wf2 = 0
    for n, sample in enumerate(classify.to_dict("records")):
        code = str(sample.get("responseCode", ""))
        image_id, arn = str(sample.get("row_value") or ""), str(sample.get("sample_id") or "")
        if code.startswith("4") and code != "429":
            continue  # refused before anything started (validation, key)
        problem = _classify_problem(image_id, by_arn.get(arn) or _best(by_image.get(image_id, [])), items_by_id)
        if problem:
            lost_wf2 += 1
            problems.append(
                {"workflow": "wf2", "request": arn or f"sample {n + 1}", "image_id": image_id, "problem": problem}
            )
    result.accounted["wf2"] = len(classify) - lost_wf2
    result.exceptions = pd.DataFrame(problems, columns=EXCEPTION_COLUMNS)
    return result


def _image_id_of_key(key: str) -> str:
    """``raw/<id>.<ext>`` → ``<id>``."""
    return key.rsplit("/", 1)[-1].split(".", 1)[0]


def _ingest_problem(image_id: str, item: dict | None, objs: list[dict]) -> str | None:
    if not image_id:
        return "201 without an image_id"
    if item is None and not objs:
        return "201 but neither item nor object"
    if item is None:
        return "201 but no item (object without item)"
    if not objs:
        return "201 but no object (item without object)"
    if len(objs) > 1:
        return f"{len(objs)} objects for one image"
    obj = objs[0]
    mismatches = []
    if str(item.get("key")) != str(obj["key"]):
        mismatches.append(f"key {item.get('key')} != {obj['key']}")
    if _int(item.get("bytes")) != _int(obj.get("size")):
        mismatches.append(f"size {item.get('bytes')} != {obj.get('size')}")
    if str(item.get("sha256") or "") != str(obj.get("sha256") or ""):
        mismatches.append("sha256 differs")
    return "item and object disagree: " + ", ".join(mismatches) if mismatches else None


def _classify_problem(image_id: str, execution: dict | None, items_by_id: dict[str, dict]) -> str | None:
    if execution is None:
        return "no execution found"
    status = str(execution.get("status"))
    if status not in TERMINAL_EXECUTION:
        return f"execution not terminal ({status})"
    item = items_by_id.get(image_id)
    if item is None:
        return None if str(execution.get("error")) == "ImageNotFound" else "no item for the image"
    item_status = str(item.get("status") or "")
    if item_status not in TERMINAL_ITEM:
        return f"item status {item_status or 'missing'} is not terminal"
    if item_status == "FAILED" and not str(item.get("error") or ""):
        return "item FAILED without a reason"
    return None


def _best(executions: list[dict]) -> dict | None:
    """The terminal execution of an image if there is one (else any)."""
    terminal = [e for e in executions if str(e.get("status")) in TERMINAL_EXECUTION]
    chosen = terminal or executions
    return chosen[0] if chosen else None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def accounted_for(tables: dict[str, pd.DataFrame]) -> str:
    """The book's lines: "N of N accounted for" per workflow, then every exception (or why there are none)."""
    if "reconciliation" not in tables:
        return "not reconciled: this run has no reconciliation tables (no JTL, or the stack was gone)"
    result = Reconciliation.from_tables(tables["reconciliation"], tables["reconciliation_exceptions"])
    return "\n".join(result.lines() + ([] if result.lost else ["no exception: nothing lost"]))
