"""Atomic file writing for inpaint/ (a model package cannot use gone.io: dependencies point down)."""
import os
import pathlib
import tempfile


def write_atomic(path, write_fn, suffix=""):
    """Write through ``write_fn(tmp_path)`` into a temp file beside ``path``, then rename onto it,
    so an interrupted run never leaves a half-written file. ``suffix`` keeps the temp file's
    extension where a writer needs it (``np.savez`` appends ``.npz`` otherwise)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
