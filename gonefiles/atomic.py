"""Atomic file writes: temp file in the target's folder, then ``os.replace`` onto the final name.

Temp files are named ``.<final name>.<pid>.<random>.gone-tmp[<suffix>]``: hidden, recognisable,
and tagged with the writing process, so ``clean_stale_temps`` can remove the leftovers of a
process that was killed (SIGKILL, power loss) without touching those of a live one.

``tempfile.mkstemp`` creates files with mode 0600; the temp file is given
``0o666 & ~umask`` before the rename, so outputs get the same permissions as any file the user
creates (``open()``/``touch`` semantics), unless the caller asks for an exact ``mode`` (e.g. 0o600
for a private file: then the file is never readable by others, not even while it is written).
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import tempfile
import threading

TEMP_MARK = ".gone-tmp"
_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[^.]+" + re.escape(TEMP_MARK) + r"(\.[A-Za-z0-9]+)?$")
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (read from /proc on Linux; elsewhere set-and-restore under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        old = os.umask(0o022)
        os.umask(old)
    return old


def is_temp_name(name: str) -> bool:
    """True for a temp file name made by this module."""
    return bool(_TEMP_RE.match(name))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True   # exists but belongs to someone else
    return True


def clean_stale_temps(folder) -> list:
    """Remove this module's temp files in ``folder`` whose writing process is gone; returns them."""
    folder = pathlib.Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        if _pid_alive(int(m.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(pathlib.Path(entry.path))
        except OSError:
            pass
    return removed


def _new_temp(path: pathlib.Path, suffix: str = ""):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=TEMP_MARK + suffix)
    return fd, tmp


def _finish(tmp: str, path: pathlib.Path, mode=None):
    os.chmod(tmp, (0o666 & ~current_umask()) if mode is None else mode)
    os.replace(tmp, path)


def _discard(tmp: str):
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_fileobj_atomic(path, write_fn, mode=None):
    """``write_fn(binary_file_object)`` into a temp file, fsync, then rename onto ``path``
    (permissions: ``mode`` if given, else ``0o666 & ~umask``)."""
    path = pathlib.Path(path)
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        _finish(tmp, path, mode)
    except BaseException:
        _discard(tmp)
        raise
    return path


def write_atomic(path, write_fn, suffix=""):
    """``write_fn(tmp_path)`` writes the file by name (for writers that want a path, e.g.
    ``np.savez``); ``suffix`` keeps the extension such writers need. Then rename onto ``path``."""
    path = pathlib.Path(path)
    fd, tmp = _new_temp(path, suffix)
    os.close(fd)
    try:
        write_fn(tmp)
        if os.path.exists(tmp):
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        _finish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    return path


def write_bytes_atomic(path, data: bytes, mode=None):
    """Write ``data`` to ``path`` atomically (``mode``: see ``write_fileobj_atomic``)."""
    return write_fileobj_atomic(path, lambda f: f.write(data), mode)


def write_text_atomic(path, text: str, encoding="utf-8", mode=None):
    """Write ``text`` to ``path`` atomically; newlines are written as given."""
    return write_bytes_atomic(path, text.encode(encoding), mode)


def copy_file_atomic(src, dest):
    """Copy the bytes of ``src`` to ``dest`` atomically (``dest``'s mode follows the umask)."""
    def copy(f):
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f, 1 << 20)
    return write_fileobj_atomic(dest, copy)
