"""The reconciliation: every request accounted for, every exception named (pure tables, no cloud)."""

from __future__ import annotations

import pandas as pd
import pytest

from swlab.analysis.reconcile import accounted_for, reconcile
from swlab.run.profiles import LabProfile
from swlab.run.stages import run_lab
from tests.unit.test_run import write_notebook

pytestmark = pytest.mark.unit

A, B, C = "a" * 32, "b" * 32, "c" * 32


def jtl(rows):
    return pd.DataFrame(rows, columns=["URL", "label", "responseCode", "sample_id", "row_value"])


def ingest(image_id, code="201"):
    return ["http://h/lab/ingest", "ingest", code, image_id if code == "201" else "", "http://img/x.jpg"]


def classify(image_id, arn, code="200"):
    return ["http://h/lab/classify", "classify", code, arn, image_id]


def items(*rows):
    return pd.DataFrame(list(rows), columns=["image_id", "key", "bytes", "sha256", "status", "error"])


def objects(*rows):
    return pd.DataFrame(list(rows), columns=["key", "size", "sha256"])


def executions(*rows):
    return pd.DataFrame(list(rows), columns=["execution_arn", "status", "image_id", "error"])


GOOD_ITEMS = items(
    [A, f"raw/{A}.jpg", 10, "sa", "CLASSIFIED", None], [B, f"raw/{B}.png", 20, "sb", "FAILED", "States.Timeout"]
)
GOOD_OBJECTS = objects([f"raw/{A}.jpg", 10, "sa"], [f"raw/{B}.png", 20, "sb"])
GOOD_EXECUTIONS = executions(["arn:1", "SUCCEEDED", A, None], ["arn:2", "FAILED", B, "States.Timeout"])
GOOD_JTL = jtl([ingest(A), ingest(B), ingest("", code="400"), classify(A, "arn:1"), classify(B, "arn:2")])


def test_a_clean_run_is_all_accounted_for():
    result = reconcile(GOOD_JTL, GOOD_ITEMS, GOOD_OBJECTS, GOOD_EXECUTIONS)
    assert result.lost == 0
    assert result.lines() == [
        "Workflow 1 (ingest): 3 of 3 accounted for",
        "Workflow 2 (classify): 2 of 2 accounted for",
    ]


@pytest.mark.parametrize(
    "items_,objects_,executions_,workflow,problem",
    [
        (GOOD_ITEMS.iloc[1:], GOOD_OBJECTS, GOOD_EXECUTIONS, "wf1", "no item"),
        (GOOD_ITEMS, GOOD_OBJECTS.iloc[1:], GOOD_EXECUTIONS, "wf1", "no object"),
        (GOOD_ITEMS.assign(sha256=["sa", "zz"]), GOOD_OBJECTS, GOOD_EXECUTIONS, "wf1", "sha256 differs"),
        (GOOD_ITEMS.assign(bytes=[11, 20]), GOOD_OBJECTS, GOOD_EXECUTIONS, "wf1", "size 11 != 10"),
        (GOOD_ITEMS.assign(status=["INGESTED", "FAILED"]), GOOD_OBJECTS, GOOD_EXECUTIONS, "wf2", "not terminal"),
        (GOOD_ITEMS.assign(error=[None, None]), GOOD_OBJECTS, GOOD_EXECUTIONS, "wf2", "without a reason"),
        (GOOD_ITEMS, GOOD_OBJECTS, GOOD_EXECUTIONS.iloc[:1], "wf2", "no execution"),
        (GOOD_ITEMS, GOOD_OBJECTS, GOOD_EXECUTIONS.assign(status=["SUCCEEDED", "RUNNING"]), "wf2", "not terminal"),
    ],
)
def test_each_kind_of_loss_is_an_exception(items_, objects_, executions_, workflow, problem):
    result = reconcile(GOOD_JTL, items_, objects_, executions_)
    assert result.lost >= 1
    assert any(r.workflow == workflow and problem in r.problem for r in result.exceptions.itertuples()), result.lines()
    assert f"{result.accounted[workflow]} of {result.requests[workflow]}" in "\n".join(result.lines())
    assert result.accounted[workflow] < result.requests[workflow]


def test_orphans_are_exceptions_even_without_a_request():
    orphan = objects(*GOOD_OBJECTS.values.tolist(), [f"raw/{C}.jpg", 5, "sc"])
    result = reconcile(GOOD_JTL, GOOD_ITEMS, orphan, GOOD_EXECUTIONS)
    assert [(r.image_id, r.problem) for r in result.exceptions.itertuples()] == [(C, "object without item")]
    lonely = items(*GOOD_ITEMS.values.tolist(), [C, f"raw/{C}.jpg", 5, "sc", "INGESTED", None])
    result = reconcile(GOOD_JTL, lonely, GOOD_OBJECTS, GOOD_EXECUTIONS)
    assert [(r.image_id, r.problem) for r in result.exceptions.itertuples()] == [(C, "item without object")]


def test_an_unknown_image_fails_clearly_without_an_item():
    result = reconcile(
        jtl([classify(C, "arn:3")]), items(), objects(), executions(["arn:3", "FAILED", C, "ImageNotFound"])
    )
    assert result.lost == 0 and result.accounted["wf2"] == 1


def test_the_books_lines_round_trip_the_saved_tables():
    result = reconcile(GOOD_JTL, GOOD_ITEMS.iloc[1:], GOOD_OBJECTS, GOOD_EXECUTIONS)
    text = accounted_for({"reconciliation": result.table(), "reconciliation_exceptions": result.exceptions})
    assert "Workflow 1 (ingest): 2 of 3 accounted for" in text and A in text
    assert "nothing lost" in accounted_for(
        {
            "reconciliation": reconcile(GOOD_JTL, GOOD_ITEMS, GOOD_OBJECTS, GOOD_EXECUTIONS).table(),
            "reconciliation_exceptions": pd.DataFrame(),
        }
    )


def test_a_run_with_a_loss_exits_non_zero(tmp_path):
    root = tmp_path / "lab"
    (root / "profiles").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    write_notebook(
        root / "notebooks" / "05_collect.ipynb",
        'run_dir: str = ""  # run',
        "from swlab.run import rundir\nfrom swlab.run.records import CollectRecord\n"
        "rundir.open_run(run_dir).save(CollectRecord(accounted=['Workflow 1 (ingest): 2 of 3 accounted for'], lost=1))",
    )
    said: list[str] = []
    result = run_lab(LabProfile("t", "", {}), run_dir=root / "runs" / "r", build_book=False, root=root, say=said.append)
    assert [s.status for s in result.stages] == ["ok"] and result.lost == 1 and not result.ok
    assert "2 of 3 accounted for" in "\n".join(said) and "LOST: 1" in "\n".join(said)
