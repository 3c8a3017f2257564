"""Without Chromium only the rendered-page checks skip, with one line; in CI they fail instead."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROBE = textwrap.dedent(
    """
    def test_page(chromium):
        assert chromium
    """
)


def run_probe(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "tests" / "test_probe.py").write_text(PROBE)
    env = {"PATH": "/nonexistent", "PYTHONPATH": str(ROOT), "CI": ci, "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_probe.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rendered_page_checks_skip_with_a_reason_without_chromium(tmp_path):
    done = run_probe(tmp_path, ci="")
    assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout + done.stderr
    assert "rendered-page check skipped: headless Chromium not found" in done.stdout


def test_ci_never_skips_them(tmp_path):
    done = run_probe(tmp_path, ci="true")
    assert done.returncode == 1 and "CI must run the rendered-page checks" in done.stdout, done.stdout
