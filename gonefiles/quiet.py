"""Quiet TensorFlow / JAX start-up for every entry point: the one definition of the backend's
environment defaults and of the start-up noise filter (`gone` and its CLI, ``import mrcnn``,
``python -m inpaint.convert`` / ``inpaint.train``, the experiments; gone/quiet.py re-exports it).
Standard library only; Keras is imported lazily.

TensorFlow prints C++ log lines before its logging is configured (``absl::InitializeLog``), so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them all: "Could not find cuda drivers", "failed call to
cuInit", the oneDNN note, cuDNN/cuFFT/cuBLAS factory registration. ``quiet_native_stderr``
catches file descriptor 2 while the backend loads and probes its devices, then writes back
every line that is not one of those known start-up notes (real errors still show).

``filter_native_stderr`` does the same for the rest of a process (an entry point's ``main``): TF's
graph optimizer prints "remapper failed" errors at run time that are not errors of ours.

``TF_ENABLE_ONEDNN_OPTS=0`` (mrcnn's reference numerics are those of TF's Eigen kernels, see
mrcnn/__init__.py) and ``TF_CPP_MIN_LOG_LEVEL=2`` are set by ``set_backend_environment``.
``gone``, ``mrcnn`` and ``inpaint`` run ``quiet_backend_import`` on import, before anything can
load TensorFlow: it sets them (a user's own values win) and makes the process's first
``import keras``, wherever it happens, quiet.

Progress bars: Keras' ``Progbar`` (verbose 1) writes ANSI colours, and backspaces and carriage
returns on any POSIX system, into logs too; ``progbar`` makes one that does so only on a terminal
(or in a notebook) and prints one plain line when done elsewhere. tqdm bars are created with
``disable=None`` (off when the output is not a terminal).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

NOISE = re.compile(
    r"absl::InitializeLog\(\)|cudart_stub\.cc|cuda_platform\.cc|failed call to cuInit|cuda_executor\.cc|"
    r"cuda_diagnostics\.cc|oneDNN custom operations are on|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation_placer\.cc|TF-TRT Warning|This TensorFlow binary is optimized|"
    r"rebuild TensorFlow with the appropriate compiler flags|Could not find cuda drivers|"
    r"cpu_feature_guard\.cc|CUDA-enabled jaxlib is not installed|Unable to initialize backend 'cuda'|"
    r"Unable to initialize backend 'rocm'|Unable to initialize backend 'tpu'|"
    r"All log messages before absl::InitializeLog|remapper failed|"
    r"To enable the following instructions: .* rebuild TensorFlow")


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
    _remove_hook()
    with quiet_native_stderr():
        import keras
        _probe_devices(keras)


BACKEND_MODULES = ("keras", "tensorflow", "jax")


class _QuietKerasImport:
    """A meta path finder that makes the first import of Keras, TensorFlow or JAX (whichever
    comes first; Keras loads one of the others) run inside ``quiet_native_stderr``, devices
    probed; then it removes itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in BACKEND_MODULES:
            return None
        _remove_hook()
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def quiet_exec_module(module):
            with quiet_native_stderr():
                exec_module(module)
                _probe_devices(module if fullname == "keras" else None, fullname)

        loader.exec_module = quiet_exec_module
        return spec


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietKerasImport)]


def _probe_devices(keras, backend=None):
    """TensorFlow / JAX print their device-probe notes (cuInit, ...) at the first device query."""
    backend = keras.backend.backend() if keras is not None else backend
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.list_physical_devices()
    elif backend == "jax":
        import jax
        jax.devices()


def quiet_backend_import():
    """The backend environment defaults, and the process's first import of Keras / TensorFlow /
    JAX (whoever makes it) quiet: what ``gone``, ``mrcnn`` and ``inpaint`` run on import."""
    set_backend_environment()
    loaded = any(m in sys.modules for m in BACKEND_MODULES)
    hooked = any(isinstance(f, _QuietKerasImport) for f in sys.meta_path)
    if not loaded and not hooked:
        sys.meta_path.insert(0, _QuietKerasImport())


def filter_native_stderr():
    """For the rest of the process, fd 2 goes through a pipe whose reader thread writes back every
    line that is not start-up noise (NOISE). For an entry point's ``main``; once per process. The
    original stderr is restored (and the pipe drained) at exit."""
    global _FILTER
    if _FILTER is not None:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
    except (OSError, ValueError, AttributeError):
        return
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def pump():
        with os.fdopen(read_fd, "rb") as source:
            for line in source:
                if not NOISE.search(line.decode("utf-8", "replace")):
                    os.write(saved, line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    _FILTER = (saved, thread)

    import atexit

    @atexit.register
    def _restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)       # closes the pipe's last writer: the reader sees EOF
        thread.join(timeout=5)


_FILTER = None


def is_terminal(stream=None) -> bool:
    """Whether progress can be redrawn in place: a terminal or a notebook."""
    stream = sys.stdout if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return tty or "ipykernel" in sys.modules


def progbar(target, verbose=1, **kwargs):
    """A ``keras.utils.Progbar``; off a terminal, ``verbose=1`` becomes 2 (one plain line when done:
    Keras' verbose 1 writes ANSI colours, and backspaces on any POSIX system)."""
    import keras

    if verbose == 1 and not is_terminal():
        verbose = 2
    return keras.utils.Progbar(target, verbose=verbose, **kwargs)
