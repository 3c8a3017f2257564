"""The lab's batch layer without executing anything: profiles, parameters, run directories, provenance,
failure messages, the notebooks' shape, and the book's assembly."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from papermill.exceptions import PapermillExecutionError

from swlab.run import book
from swlab.run.paths import LabError, new_run_id, notebooks, project_root
from swlab.run.profiles import declared_parameters, load_profile, parse_assignments, plan_parameters
from swlab.run.provenance import git_info, tool_versions
from swlab.run.rundir import open_run, start_run
from swlab.run.services import image_urls
from swlab.run.stages import describe_failure
from swlab.settings import load_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REPO_NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def write_notebook(path: Path, params: str, *code: str) -> Path:
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}"), cell, *(new_code_cell(c) for c in code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A lab checkout in miniature: pyproject.toml, notebooks/, profiles/."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    write_notebook(
        tmp_path / "notebooks" / "00_setup.ipynb",
        'target: str = "local"  # where\nrun_dir: str = ""  # run\nrate_per_s: float = 1.0  # rate',
    )
    write_notebook(
        tmp_path / "notebooks" / "01_load.ipynb",
        'run_dir: str = ""  # run\nrate_per_s: float = 1.0  # rate\nduration_s: int = 180  # how long',
    )
    (tmp_path / "notebooks" / "helper.ipynb").write_text("{}")  # not NN_name: not a stage
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "small.yaml").write_text(
        "name: small\ndescription: tiny\nparameters:\n  rate_per_s: 2\n  duration_s: 10\n"
    )
    return tmp_path


# ----------------------------------------------------------------------------- profiles and parameters


def test_project_root_found_from_a_subfolder(fake_root):
    assert project_root(fake_root / "notebooks") == fake_root


def test_notebooks_are_the_numbered_ones_in_order(fake_root):
    assert [p.name for p in notebooks(fake_root)] == ["00_setup.ipynb", "01_load.ipynb"]


def test_profile_by_name_and_by_path(fake_root):
    by_name = load_profile("small", fake_root)
    by_path = load_profile(str(fake_root / "profiles" / "small.yaml"))
    assert by_name == by_path
    assert by_name.parameters == {"rate_per_s": 2, "duration_s": 10}


def test_unknown_profile_lists_the_known_ones(fake_root):
    with pytest.raises(LabError, match=r"no profile 'nope'.*\['small'\]"):
        load_profile("nope", fake_root)


def test_profile_with_unknown_keys_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nparams:\n  a: 1\n")
    with pytest.raises(LabError, match="unknown profile keys"):
        load_profile(str(path))


def test_json_profile(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"name": "j", "parameters": {"duration_s": 5}}))
    assert load_profile(str(path)).parameters == {"duration_s": 5}


def test_assignments_are_typed_as_yaml():
    assert parse_assignments(["rate_per_s=2.5", "target=aws", "memory_mb={resnet: 2048}", "flag=true"]) == {
        "rate_per_s": 2.5,
        "target": "aws",
        "memory_mb": {"resnet": 2048},
        "flag": True,
    }
    with pytest.raises(LabError, match="NAME=VALUE"):
        parse_assignments(["rate_per_s"])


def test_each_notebook_gets_only_what_it_declares(fake_root):
    plan = plan_parameters({"target": "aws", "duration_s": 5, "rate_per_s": 3}, notebooks(fake_root))
    assert plan == {
        "00_setup.ipynb": {"target": "aws", "rate_per_s": 3},
        "01_load.ipynb": {"duration_s": 5, "rate_per_s": 3},
    }


def test_a_parameter_no_notebook_declares_is_an_error(fake_root):
    with pytest.raises(LabError, match=r"\['durationn_s'\] are declared by no notebook"):
        plan_parameters({"durationn_s": 5}, notebooks(fake_root))


@pytest.mark.parametrize("name", ["mission", "ci"])
def test_shipped_profiles_fit_the_shipped_notebooks(name):
    profile = load_profile(name, ROOT)
    plan = plan_parameters(profile.parameters, notebooks(ROOT))
    assert plan["00_setup.ipynb"]["target"] == "local"


def test_mission_profile_is_the_missions_load():
    params = load_profile("mission", ROOT).parameters
    declared = set().union(*(declared_parameters(nb) for nb in REPO_NOTEBOOKS))
    for key, value in (("rate_per_s", 1), ("duration_s", 180)):
        if key in declared:  # the load-test notebooks declare them once they exist
            assert params[key] == value


# ----------------------------------------------------------------------------- the notebooks' shape


@pytest.mark.parametrize("path", REPO_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin_cleared_and_parameterized(path):
    raw = json.loads(path.read_text())
    assert all("id" in c for c in raw["cells"]), "every cell has an id (nbformat 4.5 warns on stderr otherwise)"
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {path.stem[:2]} ·")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assignments = [ln for ln in tagged[0].source.splitlines() if ln.strip() and not ln.startswith("#")]
    declared = declared_parameters(path)
    assert len(declared) == len(assignments), "every line of the parameters cell is readable by papermill"
    for name, p in declared.items():
        assert p["type"] != "None", f"{name} has no type annotation"
        assert p["help"], f"{name} has no comment"
    assert "run_dir" in declared
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "outputs stay out of git"
            tree = ast.parse(TransformerManager().transform_cell(cell.source))  # magics → Python
            defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
            assert not defs, "no function definitions in notebooks: logic lives in the package"


def test_help_notebook_lists_the_parameters():
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "papermill"), "--help-notebook", str(ROOT / "notebooks" / "00_setup.ipynb")],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 and not (ROOT / ".venv" / "bin" / "papermill").exists():
        pytest.skip("papermill CLI not in .venv")
    for name in ("target", "region", "stack", "run_dir"):
        assert f"  {name}: " in done.stdout


# ----------------------------------------------------------------------------- runs and provenance


def test_run_id_is_sortable_and_names_the_profile():
    from datetime import datetime, timezone

    assert new_run_id("mission", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "20260102T030405Z-mission"
    assert new_run_id("a b/c").endswith("-a-b-c")


def test_start_run_records_provenance_and_points_latest(fake_root):
    settings = load_settings(env={}, target="local", stack="labx")
    run = start_run("", settings, root=fake_root)
    assert run.dir.parent == fake_root / "runs"
    assert (fake_root / "runs" / "latest").resolve() == run.dir
    manifest = run.manifest()
    assert manifest["run_id"] == run.id and manifest["target"] == "local"
    assert manifest["settings"]["stack"] == "labx"
    assert manifest["provenance"]["tools"]["papermill"]
    assert set(manifest["provenance"]["git"]) == {"commit", "branch", "dirty"}
    assert open_run("", root=fake_root).dir == run.dir


def test_settings_come_back_with_the_local_cloud_endpoint(tmp_path):
    run = start_run(tmp_path / "r", load_settings(env={}, target="local", region="eu-west-1"), root=ROOT)
    run.record("localcloud", {"endpoint": "http://127.0.0.1:5555", "started_by_lab": True})
    settings = run.settings()
    assert (settings.target, settings.region, settings.endpoint_url) == ("local", "eu-west-1", "http://127.0.0.1:5555")


def test_the_manifest_is_strict_json_even_with_missing_values(tmp_path):
    import json

    import numpy as np

    run = start_run(tmp_path / "r", root=ROOT)
    run.record(
        "cost",
        [{"workflow": "ingest", "step_functions": float("nan"), "lambda": np.float64(1.5), "per": [float("inf"), 2.0]}],
    )
    strict = json.loads(run.manifest_path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the manifest"))
    assert strict["cost"] == [{"workflow": "ingest", "step_functions": None, "lambda": 1.5, "per": [None, 2.0]}]


def test_a_run_without_setup_says_what_to_do(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    with pytest.raises(LabError, match="run notebooks/00_setup.ipynb first"):
        run.settings()
    with pytest.raises(LabError, match="is not a lab run"):
        open_run(tmp_path / "elsewhere")


def test_existing_run_keeps_what_the_runner_recorded(tmp_path):
    run = start_run(tmp_path / "r", profile="ci", parameters={"a": 1}, root=ROOT)
    again = start_run(run.dir, load_settings(env={}), root=ROOT)
    assert again.manifest()["profile"] == {"name": "ci"} and again.manifest()["parameters"] == {"a": 1}


def test_git_info_sees_commit_and_changes(tmp_path):
    assert git_info(tmp_path) == {"commit": None, "branch": None, "dirty": None}
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    info = git_info(tmp_path)
    assert len(info["commit"]) == 40 and info["branch"] == "main" and info["dirty"] is False
    (tmp_path / "f").write_text("2")
    assert git_info(tmp_path)["dirty"] is True


def test_tool_versions_name_missing_tools_as_none():
    versions = tool_versions(["papermill", "surely-not-installed-xyz"])
    assert versions["papermill"] and versions["surely-not-installed-xyz"] is None and versions["python"]


# ----------------------------------------------------------------------------- failure messages


def test_failure_names_notebook_cell_and_error(tmp_path):
    executed = write_notebook(tmp_path / "03_load.ipynb", "x: int = 1  # x", "a = 1", "1 / 0")
    nb = nbformat.read(executed, as_version=4)
    injected = new_code_cell("x = 2")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    nbformat.write(nb, executed)
    # papermill's index counts the injected cell: "1 / 0" is cell 5 of 5 there, cell 4 of the author's notebook
    exc = PapermillExecutionError(
        cell_index=4, exec_count=4, source="1 / 0", ename="ZeroDivisionError", evalue="division by zero", traceback=[]
    )
    message = describe_failure(exc, Path("notebooks/03_load.ipynb"), executed)
    assert message.startswith("03_load.ipynb, cell 4 (In [4]): ZeroDivisionError: division by zero")
    assert "| 1 / 0" in message and str(executed) in message


def test_other_failures_name_the_notebook():
    message = describe_failure(TimeoutError("kernel did not start"), Path("05_collect.ipynb"), Path("x"))
    assert message == "05_collect.ipynb: TimeoutError: kernel did not start"


# ----------------------------------------------------------------------------- the book's assembly


def test_toc_drops_notebooks_the_run_did_not_execute():
    toc, missing = book._toc_for(ROOT / "_toc.yml", {"00_setup", "08_teardown"})
    files = [c["file"] for p in toc["parts"] for c in p["chapters"]]
    assert "notebooks/00_setup" in files and "notebooks/06_analysis" not in files
    assert "06_analysis" in missing and "book/architecture" in files


def test_every_toc_entry_exists_in_the_repository():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for entry in entries:
        if not entry.startswith("notebooks/"):
            assert (ROOT / f"{entry}.md").is_file(), entry


def test_config_never_executes_notebooks():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"


@pytest.mark.parametrize(
    "weights, expected", [("untrained", "weights: untrained"), (None, "did not record"), ("imagenet", None)]
)
def test_results_pages_say_when_weights_were_untrained(tmp_path, weights, expected):
    nb = write_notebook(tmp_path / "06_analysis.ipynb", "run_dir: str = ''  # r", "1")
    manifest = {"models": {"weights": weights}} if weights else {}
    book._copy_notebook(nb, tmp_path / "out.ipynb", manifest)
    cells = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
    if expected:
        assert cells[0].source.startswith("# 06_analysis") and expected in cells[1].source
    else:
        assert len(cells) == 3


def test_run_page_shows_parameters_stages_and_commit():
    manifest = {
        "run_id": "r1",
        "target": "local",
        "parameters": {"duration_s": 180},
        "stages": [{"name": "00_setup", "status": "ok", "seconds": 3.5}],
        "provenance": {"git": {"commit": "abc", "dirty": True}, "tools": {"moto": "5.2.5"}},
        "models": {"weights": "untrained"},
    }
    page = book.run_page(manifest, ["06_analysis"])
    for text in (
        "`r1`",
        "| duration_s | 180 |",
        "| 00_setup | ok | 3.5 |",
        "`abc` (with uncommitted changes)",
        "| moto | 5.2.5 |",
        "`06_analysis`",
        "weights: untrained",
    ):
        assert text in page


@pytest.mark.parametrize(
    ("localcloud", "expected"),
    [
        ({"cpu_model": "aws", "cpu_share_mechanism": "cgroup-v1"}, "CPU followed memory as on AWS"),
        ({"cpu_model": "aws", "cpu_share_mechanism": "sigstop"}, "stopping and continuing"),
        ({"cpu_model": "off", "cpu_share_mechanism": "off"}, "CPU did not follow memory"),
        ({"cpu_model": "aws", "cpu_share_mechanism": "cgroup-v1", "init_cpu": "boost"}, "Init phases ran on 2 vCPUs"),
        ({"cpu_model": "aws", "cpu_share_mechanism": "cgroup-v1", "init_cpu": "memory"}, "got the memory share too"),
        ({"endpoint": "http://127.0.0.1:1"}, "did not report its CPU model"),
        (None, None),
    ],
)
def test_run_page_says_how_cpu_followed_memory(localcloud, expected):
    page = book.run_page({"run_id": "r1", "localcloud": localcloud}, [])
    if expected:
        assert expected in page
    else:  # target aws: AWS gives the CPU, nothing to say about the local cloud
        assert "CPU" not in page


def test_image_problems_are_named(tmp_path):
    page = tmp_path / "p.html"
    (tmp_path / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    assert book._image_problem("ok.png", page) is None
    assert "no such file" in book._image_problem("gone.png", page)
    assert "empty file" in book._image_problem("empty.png", page)
    assert "not a PNG" in book._image_problem("text.png", page)
    assert "remote" in book._image_problem("https://example.org/x.png", page)
    assert book._image_problem("data:image/png;base64,iVBORw0KGgo=", page) is None
    assert "empty data" in book._image_problem("data:image/png;base64,", page)


def test_expected_figures_counts_image_outputs(tmp_path):
    nb = new_notebook(cells=[new_code_cell("plot")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "F"}),
        nbformat.v4.new_output("stream", text="hi"),
    ]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert book.expected_figures(tmp_path / "n.ipynb") == 1
    # a figure that did not render (no display formatter) still counts: the page will lack it
    nb.cells[0].outputs.append(
        nbformat.v4.new_output("execute_result", data={"text/plain": "<Figure size 640x480 with 1 Axes>"})
    )
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert book.expected_figures(tmp_path / "n.ipynb") == 2


def test_image_urls_come_from_the_parameter_or_the_run_image_server(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    with pytest.raises(LabError, match="image_urls=\\[...\\]"):
        image_urls(run)
    run.record("image_server", {"sample_urls": ["http://127.0.0.1:1/samples/a.jpg"]})
    assert image_urls(run) == ["http://127.0.0.1:1/samples/a.jpg"]
    assert image_urls(run, ["https://example.org/b.jpg"]) == ["https://example.org/b.jpg"]


def test_window_spans_what_the_notebooks_measured(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    with pytest.raises(LabError, match="no measured period"):
        run.window()
    run.record("localcloud", {"started_at": "2026-01-01T00:00:00+00:00"})  # no ended_at: not a measurement
    run.record("smoke_test", {"started_at": "2026-01-01T10:00:00+00:00", "ended_at": "2026-01-01T10:01:00+00:00"})
    run.record("load_wf2", {"started_at": "2026-01-01T10:05:00+00:00", "ended_at": "2026-01-01T10:08:00+00:00"})
    start, end = run.window(margin_s=5)
    assert (start.isoformat(), end.isoformat()) == ("2026-01-01T09:59:55+00:00", "2026-01-01T10:08:05+00:00")
