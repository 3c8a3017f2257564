"""The lab report: a Jupyter Book built from the executed notebooks of one run, and a browser check of it.

:func:`build_book` assembles a source tree in ``<run>/book/src`` — the
repository's ``_config.yml``, ``_toc.yml`` and ``book/`` chapters, the ``asl/``
and ``lambdas/`` files the chapters include, and the run's *executed*
notebooks (never the repository's cleared ones) — then runs Jupyter Book 1.x
with ``execute_notebooks: "off"`` and warnings as errors. The HTML lands in
``<run>/book/_build/html``.

Build-time additions, all from the run's ``manifest.json``: ``book/run.md``
(profile, parameters, stage times, commit, tool versions), the robustness page's tables (faults injected
against outcomes, :mod:`swlab.run.robustness_page`) and, when the models
ran with untrained weights, a warning at the top of every results page.

:func:`check_page` opens a built page in headless Chromium (``--dump-dom``) and
checks every ``<img>`` of the rendered DOM: the file exists, is non-empty and is
an image; and a page built from a notebook shows as many figures as the
notebook has image outputs.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from swlab.run.paths import project_root
from swlab.run.records import ModelsRecord
from swlab.run.robustness_page import robustness_section
from swlab.run.rundir import RunDir

INCLUDED_DIRS = ("book", "asl", "lambdas")  # what the chapters show or include (literalinclude)
RESULTS_NOTEBOOKS = ("smoke", "analysis", "cost", "load_test")
BOOK_NOTEBOOKS = (
    "[0-9][0-9]_*.ipynb",
    "e[0-9]_*.ipynb",
)  # the lab's notebooks, the experiments' pages  # pages that show model labels or measurements
IMAGE_MIME = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with: apt-get install -y --no-install-recommends chromium"


class BookError(RuntimeError):
    """The book could not be built or a page failed its check; the message says which and why."""


# ----------------------------------------------------------------------------- assembling the source tree


def assemble(run: RunDir, root: Path | None = None) -> Path:
    """Write the book's source tree for ``run`` into ``<run>/book/src`` (replaced if present)."""
    root = root or project_root()
    src = run.book_src
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy2(root / "_config.yml", src / "_config.yml")
    for name in INCLUDED_DIRS:
        if (root / name).is_dir():
            shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    executed = executed_notebooks(run)
    if not executed:
        raise BookError(f"{run.notebooks_dir} holds no executed notebook: run the lab first (scripts/run-lab)")
    (src / "notebooks").mkdir()
    manifest = run.manifest()
    for nb in executed:
        _copy_notebook(nb, src / "notebooks" / nb.name, manifest)
    toc, missing = _toc_for(root / "_toc.yml", {nb.stem for nb in executed})
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (src / "book" / "run.md").write_text(run_page(manifest, missing))
    _banner_after_title(src / "book" / "results.md", _weights_banner(weights_status(manifest)))
    _append(src / "book" / "method.md", weights_section(manifest))
    _append(src / "book" / "robustness.md", robustness_section(run))
    return src


def _append(page: Path, text: str) -> None:
    if text and page.exists():
        page.write_text(page.read_text().rstrip("\n") + "\n\n" + text)


def weights_section(manifest: dict) -> str:
    """The method page's account of this run's weights: per model, where they came from (the models record)."""
    models = manifest.get(ModelsRecord.KEY) or {}
    prepared = models.get("prepared") if isinstance(models, dict) else None
    if not isinstance(prepared, dict) or not prepared:
        return "### The weights of this run\n\nThis run did not record where its model weights came from.\n"
    lines = ["### The weights of this run", "", "| model | weights | where from |", "|---|---|---|"]
    for name, entry in sorted(prepared.items()):
        how = entry.get("how") or (f"cache ({entry['source']})" if entry.get("source") else "seeded")
        onnx = f"; ONNX export `{entry['onnx_key']}`" if entry.get("onnx_key") else ""
        lines.append(f"| {name} | {entry.get('weights', '?')} | {how}{onnx} |".replace("\n", " "))
    return "\n".join(lines) + "\n"


def executed_notebooks(run: RunDir) -> list[Path]:
    """The run's executed notebooks that make book pages: the lab's ``NN_*`` and the experiments' ``eN_*``."""
    if not run.notebooks_dir.is_dir():
        return []
    return sorted(p for pattern in BOOK_NOTEBOOKS for p in run.notebooks_dir.glob(pattern))


def _banner_after_title(page: Path, banner: str) -> None:
    if not banner or not page.exists():
        return
    title, _, rest = page.read_text().partition("\n")
    page.write_text(f"{title}\n\n{banner}\n{rest}")


def _toc_for(template: Path, executed: set[str]) -> tuple[dict, list[str]]:
    """The repository's table of contents without the notebooks this run did not execute."""
    toc = yaml.safe_load(template.read_text())
    missing: list[str] = []

    def keep(entry: dict) -> bool:
        path = str(entry.get("file", ""))
        if path.startswith("notebooks/") and Path(path).name not in executed:
            missing.append(Path(path).name)
            return False
        return True

    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part.get("chapters", []) if keep(c)]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    return toc, missing


def weights_status(manifest: dict) -> str | None:
    """``"pretrained"``, ``"untrained"`` or ``None`` (not recorded), from what the notebooks recorded."""
    models = manifest.get(ModelsRecord.KEY) or {}
    return models.get("weights") if isinstance(models, dict) else None


def _copy_notebook(src: Path, dst: Path, manifest: dict) -> None:
    nb = json.loads(src.read_text())
    if any(word in src.stem for word in RESULTS_NOTEBOOKS):
        banner = _weights_banner(weights_status(manifest))
        if banner:
            nb["cells"].insert(
                1 if nb["cells"] else 0,
                {"cell_type": "markdown", "metadata": {}, "source": banner, "id": "swlab-weights-banner"},
            )
    dst.write_text(json.dumps(nb, indent=1))


def _weights_banner(status: str | None) -> str:
    if status == "untrained":
        return (
            ":::{warning}\n**weights: untrained.** The models of this run had no pretrained ImageNet "
            "weights (none could be had on the machine that ran it); they used deterministic seeded "
            "weights, so the labels below are not meaningful. Latency, cold starts and cost do not "
            "depend on the weights' values.\n:::\n"
        )
    if status is None:
        return ":::{note}\nThis run did not record which weights the models used.\n:::\n"
    return ""


def run_page(manifest: dict, missing: list[str]) -> str:
    """The "This run" chapter: what produced the results, from the run's manifest."""
    prov = manifest.get("provenance") or {}
    git = prov.get("git") or {}
    lines = ["# This run", "", f"Run `{manifest.get('run_id', '?')}`.", ""]
    weights = _weights_banner(weights_status(manifest))
    if weights:
        lines += [weights, ""]
    profile = manifest.get("profile") or {}
    lines += [
        f"Profile **{profile.get('name', '?')}**: {profile.get('description', '')}",
        "",
        f"Target **{manifest.get('target', '?')}**, commit `{git.get('commit') or 'unknown'}`"
        f"{' (with uncommitted changes)' if git.get('dirty') else ''}, created {manifest.get('created_at', '?')}.",
        "",
        *_cpu_lines(manifest),
        "## Parameters",
        "",
        *_table(["parameter", "value"], (manifest.get("parameters") or {}).items()),
        "",
        "## Stages",
        "",
        *_table(
            ["stage", "status", "seconds"],
            [(s["name"], s["status"], s.get("seconds") or "") for s in manifest.get("stages") or []],
        ),
    ]
    loads = [manifest[k] for k in sorted(manifest) if k.startswith("load_") and isinstance(manifest[k], dict)]
    if loads:
        lines += [
            "",
            "## Load tests",
            "",
            *_table(
                ["workflow", "mode", "samples", "errors %", "p50 ms", "p99 ms"],
                [
                    (
                        r.get("workflow"),
                        r.get("mode", "sync") + (f" (poll {r['poll_ms']} ms)" if r.get("poll_ms") else ""),
                        (r.get("summary") or {}).get("samples"),
                        (r.get("summary") or {}).get("error_pct"),
                        (r.get("summary") or {}).get("p50_ms"),
                        (r.get("summary") or {}).get("p99_ms"),
                    )
                    for r in loads
                ],
            ),
        ]
    if missing:
        lines += ["", "Not executed in this run (so not in this book): " + ", ".join(f"`{m}`" for m in missing) + "."]
    lines += ["", "## Tool versions", "", *_table(["tool", "version"], (prov.get("tools") or {}).items())]
    return "\n".join(lines) + "\n"


CPU_MECHANISMS = {
    "cgroup-v1": "a CFS quota per environment (cgroup v1 `cpu` controller)",
    "cgroup-v2": "a CFS quota per environment (`cpu.max` in a delegated cgroup v2 subtree)",
    "sigstop": "stopping and continuing each environment's processes when they run ahead of their share",
    "off": "nothing: every environment could use the whole machine",
}


def _cpu_lines(manifest: dict) -> list[str]:
    """How the local cloud gave each function its CPU share (empty on AWS, where AWS does)."""
    cloud = manifest.get("localcloud") or {}
    if not cloud:
        return []
    model, mechanism = cloud.get("cpu_model"), cloud.get("cpu_share_mechanism")
    if model is None and mechanism is None:
        return ["The local cloud of this run did not report its CPU model.", ""]
    if model == "off" or mechanism == "off":
        return [
            "**CPU did not follow memory** in this run (`cpu_model` "
            f"{model!r}, mechanism {mechanism!r}): memory sizes changed nothing but the bill.",
            "",
        ]
    init = {
        "boost": " Init phases ran on 2 vCPUs whatever the memory (`init_cpu` `boost`), as measured on AWS.",
        "memory": " Init phases got the memory share too (`init_cpu` `memory`), unlike AWS's measured init.",
    }.get(str(cloud.get("init_cpu")), "")
    return [
        f"CPU followed memory as on AWS (`cpu_model` `{model}`: 1,769 MB = one vCPU, capped by this machine's "
        f"cores), enforced by {CPU_MECHANISMS.get(str(mechanism), f'`{mechanism}`')}.{init}",
        "",
    ]


def _table(header: list[str], rows) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join(str(v).replace("|", "\\|") if v is not None else "—" for v in row) + " |")
    return out


# ----------------------------------------------------------------------------- building


def jupyter_book_command(src: Path, out: Path) -> list[str]:
    """Strict: any Sphinx warning fails the build (``-W``), after reporting all of them (``--keep-going``)."""
    return [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(src),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "-W",
        "--keep-going",
        "--all",
    ]


def build_book(run: RunDir, root: Path | None = None) -> Path:
    """Assemble and build the book of ``run``; return the path of its ``index.html``."""
    src = assemble(run, root)
    out = run.book_dir
    shutil.rmtree(run.book_html.parent, ignore_errors=True)
    done = subprocess.run(jupyter_book_command(src, out), capture_output=True, text=True, timeout=900)
    index = run.book_html / "index.html"
    if done.returncode != 0 or not index.exists():
        problems = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if "WARNING" in line or "ERROR" in line or "Error" in line
        ]
        tail = "\n".join(problems[-40:] or (done.stdout + done.stderr).splitlines()[-40:])
        raise BookError(f"jupyter-book build failed (exit {done.returncode}) for {src}:\n{tail}")
    return index


def html_dir(run: RunDir) -> Path:
    return run.book_html


# ----------------------------------------------------------------------------- checking a page in a browser


class _ImgCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.srcs.append(dict(attrs).get("src") or "")


@dataclass
class PageCheck:
    page: Path
    images: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected_figures: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        state = "ok" if self.ok else "FAILED: " + "; ".join(self.problems)
        return f"{self.page.name}: {len(self.images)} images (expected >= {self.expected_figures}) {state}"


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BookError(f"headless Chromium not found ({', '.join(CHROMIUM_NAMES)}); {INSTALL_HINT}")


def dump_dom(page: Path, chromium: str | None = None, timeout_s: float = 90) -> str:
    """The DOM of ``page`` after Chromium loaded and ran it (no network: the page is a local file)."""
    chromium = chromium or find_chromium()
    with tempfile.TemporaryDirectory(prefix="swlab-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or "<html" not in done.stdout.lower():
        raise BookError(f"Chromium could not render {page} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def _image_problem(src: str, page: Path) -> str | None:
    """Why ``src`` (as rendered in ``page``) is not a usable image, or ``None``."""
    if not src:
        return "an <img> without src"
    parts = urlsplit(src)
    if parts.scheme == "data":
        payload = src.split(",", 1)[1] if "," in src else ""
        data = base64.b64decode(payload) if ";base64" in src.split(",", 1)[0] else unquote(payload).encode()
        return None if len(data) > 0 else f"empty data: image {src[:40]}"
    if parts.scheme in ("http", "https"):
        return f"{src} is remote (the report must not need the network)"
    target = Path(unquote(parts.path)) if parts.scheme == "file" else (page.parent / unquote(parts.path))
    if not target.is_file():
        return f"{src}: no such file ({target})"
    head = target.read_bytes()[:1024]
    if not head:
        return f"{src}: empty file"
    if not (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8") or head.startswith(b"GIF8") or b"<svg" in head):
        return f"{src}: not a PNG, JPEG, GIF or SVG image"
    return None


def _is_figure(output: dict) -> bool:
    """An image output, or a figure that failed to render and left only its text repr (``<Figure size ...>``)."""
    data = output.get("data", {})
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return any(mime in data for mime in IMAGE_MIME) or text.lstrip().startswith("<Figure size")


def expected_figures(notebook: Path) -> int:
    """How many figures an executed notebook holds (including ones that did not render as images)."""
    nb = json.loads(notebook.read_text())
    return sum(1 for cell in nb.get("cells", []) for out in cell.get("outputs", []) if _is_figure(out))


def check_page(page: Path, expected: int = 0, chromium: str | None = None) -> PageCheck:
    """Open ``page`` in headless Chromium; every image must exist and be one, at least ``expected`` of them."""
    if not page.is_file():
        return PageCheck(page=page, problems=[f"page {page} does not exist"], expected_figures=expected)
    collector = _ImgCollector()
    collector.feed(dump_dom(page, chromium))
    check = PageCheck(page=page, images=collector.srcs, expected_figures=expected)
    check.problems = [p for p in (_image_problem(src, page) for src in collector.srcs) if p]
    content = [s for s in collector.srcs if "logo" not in s]
    if len(content) < expected:
        check.problems.append(f"{len(content)} figures rendered, the notebook has {expected}")
    return check


def check_pages(run: RunDir, chromium: str | None = None) -> list[PageCheck]:
    """Check every notebook page of the run's book and the architecture chapter; raise on any problem."""
    html = html_dir(run)
    pages = [(html / "book" / "architecture.html", 1)]
    pages += [(html / "notebooks" / f"{nb.stem}.html", expected_figures(nb)) for nb in executed_notebooks(run)]
    checks = [check_page(page, expected, chromium) for page, expected in pages]
    bad = [c for c in checks if not c.ok]
    if bad:
        raise BookError("figures missing in the book:\n" + "\n".join(c.summary() for c in bad))
    return checks
