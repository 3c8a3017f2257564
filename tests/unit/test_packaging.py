"""Lambda packaging: discovery by convention, zip contents, determinism, placeholders, dependency cache."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from swlab.provision import bytecode, packaging
from swlab.provision.functions import DEFAULT_PLACEHOLDERS
from swlab.provision.packaging import PackagingError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lambdas"
REPO_LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"


def make_function(root: Path, name: str, requirements: str = "", **config) -> Path:
    folder = root / name
    (folder / "events").mkdir(parents=True)
    (folder / "handler.py").write_text(
        "from domain import run\n\ndef handler(event, context):\n    return run(event)\n"
    )
    (folder / "domain.py").write_text("def run(event):\n    return event\n")
    (folder / "events" / "basic.json").write_text("{}")
    (folder / "requirements.txt").write_text(requirements)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "domain.cpython-311.pyc").write_bytes(b"\0")
    spec = {
        "handler": "handler.handler",
        "runtime": "python3.11",
        "memory_mb": 256,
        "timeout_s": 9,
        "architecture": "x86_64",
        "packaging": "zip",
        "environment": {"B": "${Bucket}"},
        **config,
    }
    (folder / "function.json").write_text(json.dumps(spec))
    return folder


@pytest.fixture
def lambdas(tmp_path: Path) -> Path:
    root = tmp_path / "lambdas"
    (root / "_shared").mkdir(parents=True)
    (root / "_shared" / "common.py").write_text("X = 1\n")
    (root / "_shared" / "notes.txt").write_text("not a module")
    make_function(root, "beta")
    make_function(root, "alpha")
    (root / "notafunction").mkdir()
    return root


def names_in(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def pyc(*modules: str) -> list[str]:
    """The bytecode entries a python3.11 zip carries for top-level ``modules`` (none on another interpreter)."""
    if not bytecode.matches_runtime("3.11"):
        return []
    return [f"__pycache__/{m}.{sys.implementation.cache_tag}.pyc" for m in modules]


def test_discovery_by_convention_skips_underscore_folders_and_folders_without_config(lambdas):
    specs = packaging.discover_functions(lambdas)
    assert [s.name for s in specs] == ["alpha", "beta"]
    assert specs[0].memory_mb == 256 and specs[0].timeout_s == 9 and specs[0].packaging == "zip"


def test_discovery_fails_clearly_on_an_empty_folder(tmp_path):
    with pytest.raises(PackagingError, match="no functions found"):
        packaging.discover_functions(tmp_path)


def test_bad_configuration_is_refused(tmp_path):
    make_function(tmp_path, "odd", packaging="tarball")
    with pytest.raises(PackagingError, match="packaging must be one of"):
        packaging.load_function_config(tmp_path / "odd")
    make_function(tmp_path, "nohandler", handler="missing.handler")
    with pytest.raises(PackagingError, match="needs missing.py"):
        packaging.load_function_config(tmp_path / "nohandler")


def test_zip_holds_function_modules_and_shared_modules_at_top_level(lambdas, tmp_path):
    spec = packaging.load_function_config(lambdas / "alpha")
    pkg = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    assert names_in(pkg.zip_bytes) == [*pyc("common", "domain", "handler"), "common.py", "domain.py", "handler.py"]
    assert pkg.dependencies is None  # empty requirements.txt: pip is not run


def test_zip_is_deterministic_whatever_the_file_times(lambdas, tmp_path):
    spec = packaging.load_function_config(lambdas / "alpha")
    first = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    for path in (lambdas / "alpha").glob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    assert first.zip_bytes == second.zip_bytes and first.code_sha256 == second.code_sha256
    infos = zipfile.ZipFile(io.BytesIO(first.zip_bytes)).infolist()
    assert {i.date_time for i in infos} == {packaging.ZIP_EPOCH}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}


def test_changed_source_changes_the_code_sha(lambdas, tmp_path):
    spec = packaging.load_function_config(lambdas / "alpha")
    before = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache").code_sha256
    (lambdas / "_shared" / "common.py").write_text("X = 2\n")
    after = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache").code_sha256
    assert before != after


def test_code_sha256_is_lambdas_base64_sha256():
    assert packaging.code_sha256(b"abc") == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="


def test_placeholders_are_substituted_and_extra_variables_win(lambdas):
    spec = packaging.load_function_config(lambdas / "alpha")
    env = packaging.resolve_environment(spec, {"Bucket": "b-1"}, {"EXTRA": "${Bucket}/x"})
    assert env == {"B": "b-1", "EXTRA": "b-1/x"}


def test_unknown_placeholder_fails_naming_it(lambdas):
    spec = packaging.load_function_config(lambdas / "alpha")
    with pytest.raises(PackagingError, match=r"unknown placeholder \$\{Bucket\}"):
        packaging.resolve_environment(spec, {"Table": "t"})


def test_overrides_apply_per_function_over_the_default(lambdas):
    alpha, beta = packaging.discover_functions(lambdas)
    overrides = {"*": {"memory_mb": 1024}, "beta": {"memory_mb": 2048, "timeout_s": 30}}
    assert packaging.apply_overrides(alpha, overrides).memory_mb == 1024
    assert (
        packaging.apply_overrides(beta, overrides).memory_mb,
        packaging.apply_overrides(beta, overrides).timeout_s,
    ) == (2048, 30)
    with pytest.raises(PackagingError, match="cannot override"):
        packaging.apply_overrides(alpha, {"alpha": {"handler": "x.y"}})


def _fake_pip(calls: list, returncode: int = 0, stderr: str = ""):
    def run(cmd, **kwargs):
        calls.append(cmd)
        if returncode == 0:
            site = Path(cmd[cmd.index("--target") + 1])
            (site / "pkg").mkdir(parents=True)
            (site / "pkg" / "__init__.py").write_text("V = 1\n")
            (site / "pkg" / "__pycache__").mkdir()
            (site / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    return run


def test_requirements_installed_for_the_lambda_platform_once_then_cached(lambdas, tmp_path, monkeypatch):
    make_function(lambdas, "withdeps", requirements="# imaging\nsomepkg==1.0\n\n", architecture="arm64")
    spec = packaging.load_function_config(lambdas / "withdeps")
    calls: list = []
    monkeypatch.setattr(packaging.subprocess, "run", _fake_pip(calls))
    first = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    second = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    assert len(calls) == 1, "the second build must reuse the cached install"
    cmd = calls[0]
    for flag, value in [
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.11"),
        ("--implementation", "cp"),
    ]:
        assert cmd[cmd.index(flag) + 1] == value
    assert "--only-binary=:all:" in cmd
    assert Path(cmd[cmd.index("-r") + 1]).name == "requirements.txt"
    # pkg has no dist-info naming it as somepkg's: not one of the function's direct imports, no bytecode
    expected = [*pyc("common", "domain", "handler"), "common.py", "domain.py", "handler.py", "pkg/__init__.py"]
    assert names_in(first.zip_bytes) == expected
    assert first.zip_bytes == second.zip_bytes


def test_cache_key_depends_on_requirements_and_platform():
    key = packaging.dependencies_key(["a==1"], "manylinux2014_x86_64", "3.11")
    assert key == packaging.dependencies_key(["a==1"], "manylinux2014_x86_64", "3.11")
    assert key != packaging.dependencies_key(["a==2"], "manylinux2014_x86_64", "3.11")
    assert key != packaging.dependencies_key(["a==1"], "manylinux2014_aarch64", "3.11")


def test_pip_failure_is_reported_with_the_platform(lambdas, tmp_path, monkeypatch):
    make_function(lambdas, "baddeps", requirements="nosuch==9\n")
    spec = packaging.load_function_config(lambdas / "baddeps")
    monkeypatch.setattr(packaging.subprocess, "run", _fake_pip([], 1, "No matching distribution found for nosuch==9"))
    with pytest.raises(PackagingError, match="manylinux2014_x86_64.*\n.*No matching distribution"):
        packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir()), "a failed install must not leave a cache entry"


def test_image_function_without_dependencies_is_code_only(tmp_path, monkeypatch):
    spec = packaging.load_function_config(FIXTURES / "model")
    assert spec.packaging == "image" and packaging.requirement_lines(spec.requirements) == ["torch==2.14.1"]
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    pkg = packaging.build_zip_package(spec, FIXTURES / "_shared", tmp_path / "cache", with_dependencies=False)
    assert names_in(pkg.zip_bytes) == [*pyc("fx_common", "handler"), "fx_common.py", "handler.py"]


@pytest.mark.skipif(not REPO_LAMBDAS.is_dir(), reason="no lambdas/ folder")
def test_the_labs_functions_all_load_and_their_placeholders_are_known():
    known = {
        "Bucket": "b",
        "Table": "t",
        "Stack": "s",
        "Region": "r",
        "AccountId": "1",
        "StateMachineArn": "arn",
        **DEFAULT_PLACEHOLDERS,
    }
    specs = packaging.discover_functions(REPO_LAMBDAS)
    assert specs, "lambdas/ holds no function"
    for spec in specs:
        env = packaging.resolve_environment(spec, known)
        assert "${" not in json.dumps(env)


def test_built_zips_are_cached_by_their_inputs(lambdas, tmp_path, monkeypatch):
    spec = packaging.load_function_config(lambdas / "alpha")
    first = packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
    monkeypatch.setattr(
        packaging, "deterministic_zip", lambda files, generated=None: pytest.fail("unchanged inputs: no rebuild")
    )
    assert packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache").zip_bytes == first.zip_bytes
    (lambdas / "alpha" / "domain.py").write_text("def run(event):\n    return None\n")
    with pytest.raises(pytest.fail.Exception, match="no rebuild"):
        packaging.build_zip_package(spec, lambdas / "_shared", tmp_path / "cache")
