"""swlab.run.services and the run directory's records: what a teardown removes (the billing bug), the image
server as a detached process recorded in the run, the typed manifest records and the layout."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nbformat
import pytest

from swlab.run.reaper import running
from swlab.run.records import ImageServerRecord, LoadTestRecord, LocalCloudRecord, ModelsRecord
from swlab.run.rundir import start_run
from swlab.run.services import plan_teardown, start_image_server, stop_image_server, stop_local_cloud, stop_processes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- what 08_teardown removes


def test_keep_local_cloud_never_keeps_a_stack_on_aws():
    """The bug: ``keep_local_cloud=True`` skipped the AWS teardown, so the stack kept billing."""
    plan = plan_teardown("aws", keep_local_cloud=True)
    assert plan.delete_stack is True


@pytest.mark.parametrize(
    "target, keep, delete_stack, stop",
    [
        ("local", False, True, True),
        ("local", True, False, False),  # explore the local cloud and the stack inside it by hand
        ("aws", False, True, True),
        ("aws", True, True, True),  # nothing local to keep on aws; the stack bills
    ],
)
def test_teardown_plan(target, keep, delete_stack, stop):
    plan = plan_teardown(target, keep_local_cloud=keep)
    assert (plan.delete_stack, plan.stop_processes) == (delete_stack, stop)


def test_teardown_notebook_leaves_the_decision_to_the_package():
    nb = nbformat.read(ROOT / "notebooks" / "08_teardown.ipynb", as_version=4)
    code = "\n".join(
        c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    )
    assert "keep_local_cloud" in code
    assert "if keep_local_cloud" not in code and "keep_local_cloud else" not in code


def test_stop_processes_keeps_them_only_on_local_when_asked(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    run.record("target", "local")
    assert stop_processes(run, keep_local_cloud=True) == {}
    assert stop_processes(run) == {"image server": False, "local cloud": False}  # none was started


# ----------------------------------------------------------------------------- the image server


def _alive(pid: int | None) -> bool:
    return bool(pid) and running(int(pid))  # a zombie waiting for its reaper has ended


def test_image_server_outlives_its_starter_and_stops_from_the_record(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    info = start_image_server(run)
    try:
        assert run.load(ImageServerRecord) == info and info.pid and info.allowed_host.startswith("127.0.0.1:")
        with urllib.request.urlopen(info.sample_urls[0], timeout=10) as resp:
            assert resp.status == 200 and resp.read()
        assert json.loads(run.image_server_state.read_text())["pid"] == info.pid
    finally:
        assert stop_image_server(run)
    assert not _alive(info.pid) and not run.image_server_state.exists()
    assert run.manifest()["image_server"]["stopped_at"]
    assert stop_image_server(run) is False  # already stopped


def test_a_local_cloud_the_run_did_not_start_is_left_alone(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    run.save(LocalCloudRecord(endpoint="http://127.0.0.1:4566", started_by_lab=False))
    assert stop_local_cloud(run) is False
    assert run.manifest()["localcloud"] == {"endpoint": "http://127.0.0.1:4566", "started_by_lab": False}


# ----------------------------------------------------------------------------- records and layout


def test_records_round_trip_and_leave_out_what_is_not_known(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    load = LoadTestRecord(workflow="wf2", started_at="a", ended_at="b", summary={"samples": 5, "p50_ms": float("nan")})
    run.save(load)
    assert run.manifest()["load_wf2"]["summary"] == {"samples": 5, "p50_ms": None}
    assert run.load(LoadTestRecord, LoadTestRecord.key_of("wf2")).summary["samples"] == 5
    run.save(ModelsRecord(prepared={"resnet": {"key": "models/resnet.pth"}}))
    assert run.manifest()["models"] == {"prepared": {"resnet": {"key": "models/resnet.pth"}}}  # no weights yet
    assert run.load(ImageServerRecord) is None


def test_layout_names_every_file_a_notebook_reads(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    rel = {
        name: str(path.relative_to(run.dir))
        for name, path in {
            "outputs": run.deploy_outputs,
            "jtl": run.jtl("wf1"),
            "wf1 rows": run.data_file("wf1"),
            "wf2 rows": run.data_file("wf2"),
            "data": run.data_dir,
            "html": run.book_html,
            "image server": run.image_server_state,
        }.items()
    }
    assert rel == {
        "outputs": "deploy/outputs.json",
        "jtl": "jmeter/wf1/results.jtl",
        "wf1 rows": "jmeter/wf1_image_urls.csv",
        "wf2 rows": "jmeter/wf2_image_ids.csv",
        "data": "data",
        "html": "book/_build/html",
        "image server": "imageserver/state.json",
    }
