"""The local cloud's function catalog: a slow unzip of one function does not hold up another's first invoke."""

import io
import threading
import zipfile
from types import SimpleNamespace

import pytest

from swlab.localcloud.lambda_runtime import catalog as catalog_mod
from swlab.localcloud.lambda_runtime.catalog import FunctionCatalog

pytestmark = pytest.mark.unit


def _zip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", f"NAME = {name!r}\n")
    return buf.getvalue()


def _function(name: str) -> SimpleNamespace:
    code = _zip(name)
    return SimpleNamespace(
        function_name=name,
        function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
        code_sha_256=name,
        code_digest=f"digest-{name}",
        code_bytes=code,
        handler="handler.handler",
        run_time="python3.11",
        memory_size=512,
        timeout=3,
        package_type="Zip",
        environment_vars={},
        tags={},
        ephemeral_storage={"Size": 512},
        version="$LATEST",
    )


def test_one_functions_unzip_does_not_block_another_functions_first_lookup(tmp_path, monkeypatch):
    functions = {name: _function(name) for name in ("slow", "fast")}
    backend = SimpleNamespace(get_function=lambda name, qualifier: functions[name])
    monkeypatch.setattr(FunctionCatalog, "backend", staticmethod(lambda account, region: backend))
    release, unzipping = threading.Event(), threading.Event()
    real_extract = catalog_mod.extract_code

    def extract(zip_bytes, code_root, digest):
        if digest == "digest-slow" and not release.is_set():
            unzipping.set()
            assert release.wait(10), "never released"
        return real_extract(zip_bytes, code_root, digest)

    monkeypatch.setattr(catalog_mod, "extract_code", extract)
    cat = FunctionCatalog(tmp_path, isolation=False, on_change=lambda key: None)
    slow = threading.Thread(target=cat.lookup, args=("000000000000", "us-east-1", "slow"))
    slow.start()
    try:
        assert unzipping.wait(10)
        done = []
        fast = threading.Thread(target=lambda: done.append(cat.lookup("000000000000", "us-east-1", "fast")))
        fast.start()
        fast.join(5)
        assert done, "the second function's lookup waited for the first one's unzip"
        spec, _ = done[0]
        assert (spec.code_dir / "handler.py").read_text() == "NAME = 'fast'\n"
    finally:
        release.set()
        slow.join(10)
    spec, _ = cat.lookup("000000000000", "us-east-1", "slow")
    assert (spec.code_dir / "handler.py").read_text() == "NAME = 'slow'\n"
