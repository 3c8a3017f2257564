"""The weights download (model_weights.download_weights / resolve_weights) against a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading

import pytest

from swlab.provision import model_weights
from swlab.run.book import weights_section

pytestmark = pytest.mark.unit
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
GOOD = f"tiny-{hashlib.sha256(PAYLOAD).hexdigest()[:8]}.pth"


@pytest.fixture
def server(tmp_path):
    (tmp_path / GOOD).write_bytes(PAYLOAD)
    (tmp_path / "tiny-00000000.pth").write_bytes(PAYLOAD)  # its name promises another checksum
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_the_checksum_and_shows_progress(server, tmp_path):
    bar = io.StringIO()
    path = model_weights.download_weights(f"{server}/{GOOD}", tmp_path / "dest", progress=bar)
    assert path.read_bytes() == PAYLOAD and path.name == GOOD and "100%" in bar.getvalue()
    with pytest.raises(model_weights.WeightsUnavailable, match="checksum mismatch"):
        model_weights.download_weights(f"{server}/tiny-00000000.pth", tmp_path / "dest", progress=None)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [GOOD]  # nothing half-written left
    with pytest.raises(model_weights.WeightsUnavailable, match="404"):
        model_weights.download_weights(f"{server}/missing-12345678.pth", tmp_path / "dest", progress=None)


def test_resolve_weights_follows_the_policy(server, tmp_path, monkeypatch):
    monkeypatch.setattr(model_weights, "weights_url", lambda name: f"https://download.invalid/models/{GOOD}")
    monkeypatch.setattr(model_weights, "checkpoint_name", lambda name: GOOD)
    home = tmp_path / "torch"
    assert model_weights.resolve_weights("alexnet", "untrained", home, server) == (None, "seeded: weights=untrained")
    path, how = model_weights.resolve_weights("alexnet", "auto", home, server, progress=None)
    assert path == home / "hub" / "checkpoints" / GOOD and how == f"downloaded from {server}/{GOOD}"
    assert model_weights.resolve_weights("alexnet", "pretrained", home, None)[1].startswith("cache (")  # now cached
    other = tmp_path / "empty"
    path, how = model_weights.resolve_weights("alexnet", "auto", other, f"{server}/nowhere", progress=None)
    assert path is None and how.startswith("seeded: cannot download") and "404" in how
    with pytest.raises(model_weights.WeightsUnavailable, match=r"^weights=pretrained: alexnet: cannot download"):
        model_weights.resolve_weights("alexnet", "pretrained", other, f"{server}/nowhere", progress=None)


def test_the_method_page_says_what_happened():
    manifest = {
        "models": {
            "prepared": {
                "alexnet": {
                    "weights": "imagenet",
                    "how": "downloaded from http://x/a-1.pth",
                    "onnx_key": "models/alexnet.onnx",
                },
                "resnet": {"weights": "untrained", "how": "seeded: cannot download http://x/r.pth: timed out"},
            }
        }
    }
    text = weights_section(manifest)
    assert "| alexnet | imagenet | downloaded from http://x/a-1.pth; ONNX export `models/alexnet.onnx` |" in text
    assert "| resnet | untrained | seeded: cannot download http://x/r.pth: timed out |" in text
    assert "did not record" in weights_section({})
