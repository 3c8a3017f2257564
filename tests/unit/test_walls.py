"""The walls between the lab's parts, read from the imports (ast), not from a convention.

- functions in ``lambdas/`` know nothing of the lab (no ``swlab`` import);
- the local cloud knows nothing of provisioning, load testing or analysis (``swlab.localcloud``
  imports no other part of ``swlab``);
- analysis works from a run directory: ``swlab.analysis`` imports neither the local cloud,
  provisioning nor the load-test runner (it may read JTLs with ``swlab.loadtest.jtl``);
- each layer imports only downward: no import cycle between ``swlab`` modules, and no ``swlab``
  import hidden inside a function (that is how cycles were hidden before);
- no module over about 450 lines unless its docstring says why it is one concern.

The checks are plain functions over a source tree, so the last tests plant each violation in a
small tree of their own and see it caught.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 450
ONE_CONCERN = "one concern"  # the phrase a longer module's docstring uses to say why it stays whole
ANALYSIS_MAY_NOT_IMPORT = ("swlab.localcloud", "swlab.provision", "swlab.loadtest.runner")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (a submodule when ``from pkg import submodule``)
    line: int
    in_function: bool
    type_checking: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path, top: str) -> list[Path]:
    return sorted(p for p in (root / top).rglob("*.py") if "__pycache__" not in p.parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, root: Path, known: set[str]) -> list[Import]:
    """Every import in one file, with whether it sits in a function or under ``if TYPE_CHECKING``."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            tc = type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, child.lineno, in_function, type_checking) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(child, module, path.name == "__init__.py")
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append(
                        Import(module, sub if sub in known else base, child.lineno, in_function, type_checking)
                    )
            visit(child, func, tc)

    visit(tree, False, False)
    return found


def swlab_imports(root: Path) -> list[Import]:
    files = python_files(root, "swlab")
    known = {module_name(p, root) for p in files}
    return [imp for p in files for imp in imports_of(p, root, known)]


def _is_swlab(name: str) -> bool:
    return name == "swlab" or name.startswith("swlab.")


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def lambdas_importing_swlab(root: Path) -> list[str]:
    return [
        f"{p.relative_to(root)}:{imp.line} imports {imp.target}"
        for p in python_files(root, "lambdas")
        for imp in imports_of(p, root, set())
        if _is_swlab(imp.target)
    ]


def localcloud_leaks(imports: list[Import]) -> list[str]:
    return [
        f"{i.module}:{i.line} imports {i.target}"
        for i in imports
        if _under(i.module, "swlab.localcloud") and _is_swlab(i.target) and not _under(i.target, "swlab.localcloud")
    ]


def analysis_leaks(imports: list[Import]) -> list[str]:
    return [
        f"{i.module}:{i.line} imports {i.target}"
        for i in imports
        if _under(i.module, "swlab.analysis") and any(_under(i.target, banned) for banned in ANALYSIS_MAY_NOT_IMPORT)
    ]


def function_level_imports(imports: list[Import]) -> list[str]:
    return [
        f"{i.module}:{i.line} imports {i.target} inside a function"
        for i in imports
        if i.in_function and _is_swlab(i.target)
    ]


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Cycles among module-level imports (Tarjan's strongly connected components of size > 1 or self-loops)."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        if _is_swlab(i.target) and not i.in_function and not i.type_checking and i.target != i.module:
            graph.setdefault(i.module, set()).add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def long_modules(root: Path, max_lines: int = MAX_LINES) -> list[str]:
    out = []
    for path in python_files(root, "swlab"):
        text = path.read_text()
        n = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if n > max_lines and ONE_CONCERN not in doc.lower():
            out.append(f"{path.relative_to(root)}: {n} lines and its docstring does not say why it is one concern")
    return out


# ---- the project itself ---------------------------------------------------------------------


def test_lambdas_know_nothing_of_the_lab():
    assert lambdas_importing_swlab(ROOT) == []


def test_the_local_cloud_imports_no_other_part_of_the_lab():
    assert localcloud_leaks(swlab_imports(ROOT)) == []


def test_analysis_imports_neither_the_local_cloud_nor_provisioning_nor_the_load_test_runner():
    assert analysis_leaks(swlab_imports(ROOT)) == []


def test_no_import_cycle_between_swlab_modules():
    assert import_cycles(swlab_imports(ROOT)) == []


def test_no_swlab_import_inside_a_function():
    assert function_level_imports(swlab_imports(ROOT)) == []


def test_modules_stay_short_or_say_why_not():
    assert long_modules(ROOT) == []


def test_importing_the_analysis_statistics_loads_no_boto():
    import subprocess
    import sys

    code = (
        "import sys, swlab.analysis.stats, swlab.analysis.cost, swlab.analysis.plots; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ---- each check catches a planted violation ---------------------------------------------------


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for pkg in ("swlab", "swlab/localcloud", "swlab/analysis", "swlab/provision", "swlab/loadtest"):
        init = tmp_path / pkg / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        if not init.exists():
            init.write_text("")
    (tmp_path / "lambdas").mkdir(exist_ok=True)
    return tmp_path


def test_a_planted_lambda_importing_the_lab_is_caught(tmp_path):
    root = _plant(tmp_path, {"lambdas/fetch/handler.py": "from swlab.settings import Settings\n"})
    assert lambdas_importing_swlab(root) == ["lambdas/fetch/handler.py:1 imports swlab.settings"]


def test_a_planted_local_cloud_import_of_settings_is_caught(tmp_path):
    root = _plant(tmp_path, {"swlab/settings.py": "", "swlab/localcloud/server.py": "from swlab import settings\n"})
    assert localcloud_leaks(swlab_imports(root)) == ["swlab.localcloud.server:1 imports swlab.settings"]


def test_a_planted_analysis_import_of_provisioning_or_the_runner_is_caught(tmp_path):
    root = _plant(
        tmp_path,
        {
            "swlab/provision/naming.py": "",
            "swlab/loadtest/runner.py": "",
            "swlab/loadtest/jtl.py": "",
            "swlab/analysis/collect.py": "from swlab.provision.naming import Names\nfrom swlab.loadtest import jtl\n"
            "from ..loadtest import runner\n",
        },
    )
    assert analysis_leaks(swlab_imports(root)) == [
        "swlab.analysis.collect:1 imports swlab.provision.naming",
        "swlab.analysis.collect:3 imports swlab.loadtest.runner",
    ]


def test_a_planted_cycle_and_a_function_level_import_are_caught(tmp_path):
    root = _plant(
        tmp_path,
        {
            "swlab/a.py": "from swlab import b\n",
            "swlab/b.py": "import swlab.c\n",
            "swlab/c.py": "from swlab.a import thing\n\ndef f():\n    from swlab import b\n",
        },
    )
    imports = swlab_imports(root)
    assert import_cycles(imports) == [["swlab.a", "swlab.b", "swlab.c"]]
    assert function_level_imports(imports) == ["swlab.c:4 imports swlab.b inside a function"]


def test_a_type_checking_import_makes_no_cycle(tmp_path):
    root = _plant(
        tmp_path,
        {
            "swlab/a.py": "from swlab import b\n",
            "swlab/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from swlab import a\n",
        },
    )
    assert import_cycles(swlab_imports(root)) == []


def test_a_planted_long_module_is_caught_unless_it_says_why(tmp_path):
    body = "x = 1\n" * 20
    root = _plant(
        tmp_path,
        {
            "swlab/long.py": '"""Many things."""\n' + body,
            "swlab/whole.py": '"""Stays whole: one concern, the X protocol."""\n' + body,
        },
    )
    assert long_modules(root, max_lines=10) == [
        "swlab/long.py: 21 lines and its docstring does not say why it is one concern"
    ]
