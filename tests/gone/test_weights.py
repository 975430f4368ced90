import hashlib
import http.server
import socket
import threading

import pytest

from gone import weights as W

pytestmark = pytest.mark.jax  # stdlib only

PAYLOAD = b"GONE test weights " * 1000


@pytest.fixture
def server(tmp_path):
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "w.bin").write_bytes(PAYLOAD)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path / "serve"), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_checksum_ok(server, tmp_path):
    dest = tmp_path / "cache" / "w.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    out = W.download(url=f"{server}/w.bin", dest=dest, sha256=sha, size=len(PAYLOAD), progress=False)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["w.bin"]   # temp file renamed away


def test_download_checksum_mismatch_writes_nothing(server, tmp_path):
    dest = tmp_path / "cache" / "w.bin"
    with pytest.raises(W.WeightsError, match="checksum mismatch"):
        W.download(url=f"{server}/w.bin", dest=dest, sha256="0" * 64, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_download_unreachable_names_target(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                  # nothing listens there now
    dest = tmp_path / "cache" / "w.bin"
    with pytest.raises(W.WeightsError, match=f"place it at {dest}"):
        W.download(url=f"http://127.0.0.1:{port}/w.bin", dest=dest, timeout=2, progress=False)
    with pytest.raises(W.WeightsError, match="cannot download"):
        W.download(url=f"http://127.0.0.1:{port}/missing", dest=dest, timeout=2, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_http_404_is_clear(server, tmp_path):
    with pytest.raises(W.WeightsError, match="cannot download"):
        W.download(url=f"{server}/missing.bin", dest=tmp_path / "x.bin", progress=False)


def test_registry_cache_and_find(monkeypatch, tmp_path):
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path))
    assert W.cache_dir() == tmp_path
    assert W.find_weight_file("mask_rcnn_coco") is None
    assert W.find_weight_file("deepfill_v1_places2") is None
    (tmp_path / "mask_rcnn_coco.h5").write_bytes(b"x")
    assert W.find_weight_file("mask_rcnn_coco") == tmp_path / "mask_rcnn_coco.h5"
    ck = tmp_path / "release_places2_256"
    ck.mkdir()
    (ck / "snap-0.index").write_bytes(b"x")
    assert W.find_weight_file("deepfill_v1_places2") == ck
    text = W.explain()
    assert "github.com/matterport/Mask_RCNN/releases" in text and "v1.0.0" in text
    with pytest.raises(W.WeightsError, match="no.*|Places2|target folder"):
        W.download("deepfill_v1_places2")
    with pytest.raises(W.WeightsError, match="unknown weights"):
        W.find_weight_file("nope")


def test_cli_weights_offline(monkeypatch, tmp_path, capsys):
    from gone import cli
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path))
    assert cli.main(["weights"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "mask_rcnn_coco.h5") in out and str(tmp_path / "release_places2_256") in out

    def offline(*a, **k):
        raise W.WeightsError(f"cannot download (offline). Download it by hand and place it at {tmp_path}")
    monkeypatch.setattr(W, "download", offline)
    assert cli.main(["weights", "--download", "mask_rcnn_coco"]) == 1
    assert "place it at" in capsys.readouterr().err
    assert cli.main(["weights", "--download", "deepfill_v1_places2"]) == 1
    assert cli.main(["weights", "--download", "bogus"]) == 2


def _small_h5(path):
    import h5py
    import numpy as np
    with h5py.File(path, "w") as f:
        f.create_dataset("conv1/kernel", data=np.arange(4096, dtype=np.float32).reshape(64, 64))
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_cli_download_refetches_a_corrupt_cached_file(server, monkeypatch, tmp_path, capsys, damage):
    from gone import cli
    good = _small_h5(tmp_path / "serve" / "tiny.h5")
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(cache))
    monkeypatch.setitem(W.REGISTRY, "tiny_h5", W.WeightSpec(
        name="tiny_h5", filename="tiny.h5", description="test weights", url=f"{server}/tiny.h5",
        source_page=server))
    cached = cache / "tiny.h5"
    cached.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"\x89HDF\r\n\x1a\n" + b"\0" * 500)
    assert W.find_weight_file("tiny_h5") == cached and W.find_weight_file("tiny_h5", verify=True) is None
    assert cli.main(["weights", "--download", "tiny_h5"]) == 0
    out = capsys.readouterr().out
    assert f"status : CORRUPT at {cached} (not a complete HDF5 file" in out
    assert "already at" not in out and f"tiny_h5: downloaded to {cached}" in out
    assert cached.read_bytes() == good
    assert cli.main(["weights", "--download", "tiny_h5"]) == 0   # now verified: kept
    out = capsys.readouterr().out
    assert f"status : found at {cached}" in out and f"tiny_h5: already at {cached}" in out


def test_cli_download_offline_says_the_cached_file_is_corrupt(monkeypatch, tmp_path, capsys):
    from gone import cli
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                  # nothing listens there now
    payload = b"pinned weights"
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setitem(W.REGISTRY, "pinned", W.WeightSpec(
        name="pinned", filename="pinned.bin", description="test weights", url=f"http://127.0.0.1:{port}/p",
        source_page="test", size=len(payload), sha256=hashlib.sha256(payload).hexdigest()))
    cached = tmp_path / "pinned.bin"
    cached.write_bytes(b"pinned weightZ")           # same size, one byte changed
    assert cli.main(["weights", "--download", "pinned"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in captured.err
    assert errors[0].startswith(f"gone: error: the cached {cached} is corrupt (SHA-256 ")
    assert "was not fetched again: cannot download" in errors[0]
    assert "already at" not in captured.out and cached.read_bytes() == b"pinned weightZ"
