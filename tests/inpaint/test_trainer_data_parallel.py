"""Data-parallel training on 2 virtual CPU devices: one global batch gives the single-device loss.

Each backend runs in a fresh process (the device count is fixed when the backend starts):
`data_parallel_check.py` takes one critic and one generator step of the same global batch of 2
with and without `distribution="data_parallel"` (JAX: keras.distribution.DataParallel; TensorFlow:
MirroredStrategy) from the same seeded weights.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_global_batch_loss_equals_single_device(backend):
    pytest.importorskip(backend)  # a missing optional backend skips; our own modules are imported inside
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parents[1]))
    proc = subprocess.run([sys.executable, str(HERE / "data_parallel_check.py"), backend], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["devices"] == 2 and result["replicas"] == 2
    assert result["d_loss_data_parallel"] == pytest.approx(result["d_loss_single"], rel=1e-5)
    assert result["g_loss_data_parallel"] == pytest.approx(result["g_loss_single"], rel=1e-5)
    assert result["fraction_weights_differing"] < 0.01  # the same Adam updates (steps ~1e-4)
