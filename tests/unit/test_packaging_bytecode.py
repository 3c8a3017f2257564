"""Zip packages carry the bytecode of what the function imports itself (swlab.provision.bytecode)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from swlab.provision import bytecode

pytestmark = pytest.mark.unit
TAG = sys.implementation.cache_tag
RUNTIME = "%d.%d" % sys.version_info[:2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def package(tmp_path: Path) -> dict[str, Path]:
    """A function's files as package_files lays them out: its modules at top level, then its dependencies."""
    deps, own = tmp_path / "deps", tmp_path / "fn"
    files = {
        "handler.py": write(own / "handler.py", "import numpy\nVALUE = 'from source'\n"),
        "numpy/__init__.py": write(deps / "numpy" / "__init__.py", "X = 1\n"),
        "numpy/core/umath.py": write(deps / "numpy" / "core" / "umath.py", "Y = 2\n"),
        "numpy/tests/test_x.py": write(deps / "numpy" / "tests" / "test_x.py", "def test(): pass\n"),
        "PIL/Image.py": write(deps / "PIL" / "Image.py", "Z = 3\n"),
        "PIL/broken.py": write(deps / "PIL" / "broken.py", "print 'python 2'\n"),
        "sympy/__init__.py": write(deps / "sympy" / "__init__.py", "S = 4\n"),
        "six.py": write(deps / "six.py", "SIX = 6\n"),
    }
    write(deps / "numpy-1.26.4.dist-info" / "RECORD", "numpy/__init__.py,sha256=x,1\nnumpy.libs/a.so,,\n")
    write(deps / "pillow-12.2.0.dist-info" / "top_level.txt", "PIL\n")
    write(deps / "sympy-1.14.0.dist-info" / "top_level.txt", "sympy\n")
    write(deps / "six-1.16.0.dist-info" / "top_level.txt", "six\n")
    return {"files": files, "deps": deps}  # type: ignore[dict-item]


def test_the_functions_modules_and_its_direct_requirements_are_compiled_not_the_rest(package):
    lines = ["Pillow==12.2.0", "numpy==1.26.4  # arrays"]
    out = bytecode.compiled_entries(package["files"], package["deps"], lines, RUNTIME)
    assert sorted(out) == [
        f"PIL/__pycache__/Image.{TAG}.pyc",  # not broken.py: no valid Python, left as source
        f"__pycache__/handler.{TAG}.pyc",
        f"numpy/__pycache__/__init__.{TAG}.pyc",
        f"numpy/core/__pycache__/umath.{TAG}.pyc",  # not numpy/tests; not sympy or six (not required directly)
    ]
    flags = int.from_bytes(out[f"__pycache__/handler.{TAG}.pyc"][4:8], "little")
    assert flags == 0b01  # PEP 552: hash-based, source not checked (the zip's fixed mtimes do not matter)
    again = bytecode.compiled_entries(package["files"], package["deps"], lines, RUNTIME)
    assert again == out  # deterministic


def test_another_python_version_gets_no_bytecode(package):
    assert bytecode.compiled_entries(package["files"], package["deps"], ["numpy"], "2.7") == {}


def test_python_loads_the_shipped_bytecode_without_compiling_the_source(package, tmp_path):
    out = bytecode.compiled_entries(package["files"], package["deps"], ["numpy"], RUNTIME)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, path in package["files"].items():
            zf.writestr(name, path.read_bytes())
        for name, data in out.items():
            zf.writestr(name, data)
    task = tmp_path / "task"
    zipfile.ZipFile(buf).extractall(task)
    (task / "handler.py").write_text("import numpy\nVALUE = 'recompiled'\n")  # a changed source is not read
    run = subprocess.run(
        [sys.executable, "-B", "-c", "import handler; print(handler.VALUE)"],
        cwd=task,
        env={"PYTHONPATH": str(task)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == "from source", run.stderr
