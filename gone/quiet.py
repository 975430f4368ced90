"""Quiet TensorFlow / JAX start-up for the command line and the experiments.

TensorFlow prints C++ log lines before its logging is configured (``absl::InitializeLog``), so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them all: "Could not find cuda drivers", "failed call to
cuInit", the oneDNN note, cuDNN/cuFFT/cuBLAS factory registration. ``quiet_native_stderr``
catches file descriptor 2 while the backend loads and probes its devices, then writes back
every line that is not one of those known start-up notes (real errors still show).

``TF_ENABLE_ONEDNN_OPTS=0`` (mrcnn's reference numerics are those of TF's Eigen kernels, see
mrcnn/__init__.py) and ``TF_CPP_MIN_LOG_LEVEL=2`` are set by ``set_backend_environment``, which
``gone`` runs on import, before anything can load TensorFlow; a user's own values win.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

NOISE = re.compile(
    r"absl::InitializeLog\(\)|cudart_stub\.cc|cuda_platform\.cc|failed call to cuInit|cuda_executor\.cc|"
    r"cuda_diagnostics\.cc|oneDNN custom operations are on|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation_placer\.cc|TF-TRT Warning|This TensorFlow binary is optimized|"
    r"rebuild TensorFlow with the appropriate compiler flags|Could not find cuda drivers|"
    r"cpu_feature_guard\.cc|CUDA-enabled jaxlib is not installed|Unable to initialize backend 'cuda'|"
    r"Unable to initialize backend 'rocm'|Unable to initialize backend 'tpu'|"
    r"All log messages before absl::InitializeLog")


def set_backend_environment():
    """TF_CPP_MIN_LOG_LEVEL=2 and TF_ENABLE_ONEDNN_OPTS=0 unless the user set them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@contextlib.contextmanager
def quiet_native_stderr():
    """Capture fd 2 (C++ and Python writes alike) for the block; replay all but start-up noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_backend_quietly():
    """Import Keras and its backend and probe the devices inside ``quiet_native_stderr``."""
    set_backend_environment()
    with quiet_native_stderr():
        import keras
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf
            tf.config.list_physical_devices()
        elif backend == "jax":
            import jax
            jax.devices()
