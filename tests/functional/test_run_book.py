"""The book, built strictly from a real run's executed notebooks, opened in headless Chromium.

The run is real but short: ``00_setup`` and ``08_teardown`` of the ci profile
(a local cloud started and stopped, the image server too). A small notebook
with a matplotlib figure, executed by papermill into the run, stands in for
the analysis so the figure check has something to find — and to miss.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from swlab.run import book
from swlab.run.profiles import load_profile
from swlab.run.reaper import running
from swlab.run.rundir import RunDir
from swlab.run.stages import run_lab
from tests.unit.test_run import write_notebook

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int | None) -> bool:
    return bool(pid) and running(int(pid))  # a zombie waiting for its reaper has ended


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> RunDir:
    run_dir = tmp_path_factory.mktemp("runs") / "short"
    said: list[str] = []
    result = run_lab(
        load_profile("ci", ROOT), run_dir=run_dir, only=["00", "08"], build_book=False, root=ROOT, say=said.append
    )
    assert result.ok, "\n".join(said)
    figure_nb = write_notebook(
        run_dir / "src" / "06_analysis.ipynb",
        'run_dir: str = ""  # run',
        "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "%matplotlib inline\nplt.plot([1, 2, 3], [3, 1, 2]); plt.title('figure')",
    )
    pm.execute_notebook(
        str(figure_nb),
        str(run_dir / "notebooks" / "06_analysis.ipynb"),
        progress_bar=False,
        parameters={"run_dir": str(run_dir)},
        kernel_name="python3",
    )
    result.run.record("models", {"weights": "untrained"})
    return result.run


def test_the_run_started_and_stopped_its_processes(short_run):
    manifest = short_run.manifest()
    assert manifest["localcloud"]["endpoint"].startswith("http://127.0.0.1:")
    # CPU follows memory by default, and the run records how this machine enforced it
    assert manifest["localcloud"]["cpu_model"] == "aws"
    assert manifest["localcloud"]["cpu_share_mechanism"] in ("cgroup-v1", "cgroup-v2", "sigstop", "off")
    assert manifest["localcloud"]["init_cpu"] == "boost"  # init phases on 2 vCPUs, as measured on AWS
    assert "stopped_at" in manifest["localcloud"] and "stopped_at" in manifest["image_server"]
    assert not _alive(int(manifest["localcloud"]["pid"]))
    assert not _alive(int(manifest["image_server"]["pid"]))
    assert manifest["teardown"]["clean"] is True
    assert [s["status"] for s in manifest["stages"]] == ["ok", "ok"]


@pytest.fixture(scope="module")
def built(short_run) -> Path:
    return book.build_book(short_run, root=ROOT)


def test_book_builds_from_the_executed_notebooks(short_run, built):
    html = built.parent
    assert built.name == "index.html" and built.is_file()
    setup_page = (html / "notebooks" / "00_setup.html").read_text()
    assert short_run.id in setup_page  # an output of the executed notebook, not of the cleared one
    run_page = (html / "book" / "run.html").read_text()
    assert "00_setup" in run_page and "lambda_idle_ttl_s" in run_page
    assert "01_deploy" in run_page  # listed as not executed in this run
    analysis = (html / "notebooks" / "06_analysis.html").read_text()
    assert "weights: untrained" in analysis
    assert (html / "_images" / "architecture.svg").stat().st_size > 1000


def test_every_figure_is_in_the_rendered_pages(short_run, built, chromium):
    checks = {c.page.name: c for c in book.check_pages(short_run, chromium)}
    assert checks["06_analysis.html"].expected_figures == 1
    assert len([s for s in checks["06_analysis.html"].images if s.endswith(".png")]) == 1
    assert any("architecture.svg" in s for s in checks["architecture.html"].images)


def test_a_missing_figure_file_fails_the_check(short_run, built, tmp_path, chromium):
    html = built.parent
    copy = tmp_path / "html"
    shutil.copytree(html, copy)
    for png in (copy / "_images").glob("*.png"):
        png.unlink()
    check = book.check_page(copy / "notebooks" / "06_analysis.html", expected=1, chromium=chromium)
    assert not check.ok and "no such file" in " ".join(check.problems)


def test_a_figure_missing_from_the_page_fails_the_check(short_run, built, tmp_path, chromium):
    copy = tmp_path / "html"
    shutil.copytree(built.parent, copy)
    page = copy / "notebooks" / "06_analysis.html"
    page.write_text(re.sub(r"<img [^>]*\.png[^>]*>", "", page.read_text()))
    check = book.check_page(page, expected=1, chromium=chromium)
    assert not check.ok and "0 figures rendered, the notebook has 1" in check.problems


def test_a_warning_fails_the_build(short_run, tmp_path):
    root = tmp_path / "root"
    for name in ("book", "asl", "lambdas", "notebooks"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    intro = root / "book" / "intro.md"
    intro.write_text(intro.read_text() + "\nSee [a page that does not exist](nowhere.md).\n")
    with pytest.raises(book.BookError, match="nowhere"):
        book.build_book(short_run, root=root)


def test_cleared_notebooks_stay_cleared(short_run):
    for nb_path in ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), nb_path
