"""Fixtures shared by the whole suite.

Golden data lives in `../shared/reference` (beside the checkout), or wherever the environment
variable GONE_SHARED_REFERENCE points. Tests that need it skip with a clear reason when it is absent.
"""
import os
import pathlib
import subprocess
import sys
import tarfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TF's environment defaults (the golden data match TF's Eigen CPU kernels, see mrcnn/__init__.py),
# set before TF loads, and a quiet first `import keras`.
from gonefiles.quiet import quiet_backend_import  # noqa: E402

quiet_backend_import()

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _reference_root():
    env = os.environ.get("GONE_SHARED_REFERENCE")
    if env:
        return pathlib.Path(env)
    return REPO_ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir():
    """`../shared/reference`; skips the test when the golden data is not beside the checkout."""
    root = _reference_root()
    if not root.is_dir():
        pytest.skip(f"golden reference data not found at {root} (set GONE_SHARED_REFERENCE)")
    return root


def _reference_part(reference_dir, name):
    d = reference_dir / name
    if not d.is_dir():
        pytest.skip(f"{d} is missing")
    return d


@pytest.fixture(scope="session")
def mrcnn_reference_dir(reference_dir):
    return _reference_part(reference_dir, "mask_rcnn")


@pytest.fixture(scope="session")
def deepfill_reference_dir(reference_dir):
    return _reference_part(reference_dir, "deepfill_v1")


@pytest.fixture(scope="session")
def lama_reference_dir(reference_dir):
    return _reference_part(reference_dir, "lama")


@pytest.fixture(scope="session")
def lama_full_weights(lama_reference_dir, tmp_path_factory):
    """big-lama random weights (989 tensors, 204 MB) as make_weights.py --npz writes them."""
    out = tmp_path_factory.mktemp("lama_weights") / "big_lama_random_weights.npz"
    run = subprocess.run([sys.executable, str(lama_reference_dir / "make_weights.py"),
                          str(lama_reference_dir / "variables.txt"), "--npz", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 mismatches" in run.stdout
    return out


@pytest.fixture(scope="session")
def mrcnn_reference_weights(mrcnn_reference_dir, tmp_path_factory):
    """The synthetic COCO weight file (Keras-2 HDF5 layout, 257 MB) made by the reference's
    make_weights.py, with variable-length string attributes (as Keras 2.15 writes them)."""
    return _make_mrcnn_weights(mrcnn_reference_dir, tmp_path_factory, "vlen")


@pytest.fixture(scope="session")
def mrcnn_reference_weights_fixed(mrcnn_reference_dir, tmp_path_factory):
    """Same arrays, fixed-length string attributes, as in the published h5py-2-era file."""
    return _make_mrcnn_weights(mrcnn_reference_dir, tmp_path_factory, "fixed")


def _make_mrcnn_weights(ref, tmp_path_factory, strings):
    out = tmp_path_factory.mktemp("mrcnn_weights") / f"mask_rcnn_synthetic_{strings}.h5"
    subprocess.run([sys.executable, str(ref / "make_weights.py"), str(ref / "mrcnn_coco_h5_manifest.json"),
                    str(out), "--strings", strings], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def deepfill_release_ckpt(deepfill_reference_dir):
    """Yu et al. TF1 checkpoint directory with the 84 generator variables."""
    return deepfill_reference_dir / "release_like_ckpt"


@pytest.fixture(scope="session")
def deepfill_full_ckpt(deepfill_reference_dir, tmp_path_factory):
    """full_ckpt.tar.xz unpacked: generator + critic variables."""
    out = tmp_path_factory.mktemp("deepfill_full")
    with tarfile.open(deepfill_reference_dir / "full_ckpt.tar.xz", "r:xz") as tar:
        tar.extractall(out, filter="data")
    return out / "full_ckpt"


@pytest.fixture
def stopped_server(monkeypatch):
    """``werkzeug.serving.make_server`` replaced by a server that stops at once, as after Ctrl-C
    (port ``stopped_server.port``, 1 unless set); ``stopped_server.served`` lists (host, app) of
    each server asked for."""
    import types

    import werkzeug.serving
    state = types.SimpleNamespace(port=1, served=[])

    class StoppedServer:
        def __init__(self):
            self.server_port = state.port

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    def make_server(host, port, app, **kwargs):
        state.served.append((host, app))
        return StoppedServer()
    monkeypatch.setattr(werkzeug.serving, "make_server", make_server)
    return state
