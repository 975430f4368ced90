"""Where the published weight files come from, and a small checksummed downloader.

Cache directory: ``$GONE_WEIGHTS_DIR`` if set, else ``~/.cache/gone``.

- ``mask_rcnn_coco``: Matterport's COCO Mask R-CNN weights, ``mask_rcnn_coco.h5``, a release asset
  of github.com/matterport/Mask_RCNN (release v2.0). Downloadable directly. Its SHA-256 is not
  published by Matterport and is not pinned here: the download is checked to be a complete
  HDF5 file (it opens, and every dataset reads back) and its SHA-256 is printed so it can be
  recorded.
- ``deepfill_v1_places2``: Yu et al.'s DeepFill v1 Places2 checkpoint (``release_places2_256``),
  shared as a Google Drive *folder* linked from the v1.0.0 branch README of
  github.com/JiahuiYu/generative_inpainting. Google Drive has no stable direct URL, so it must be
  downloaded by hand and the folder placed at ``<cache>/release_places2_256/`` (files
  ``checkpoint``, ``snap-*.index``, ``snap-*.data-00000-of-00001``; rename ``checkpoint.txt`` to
  ``checkpoint`` if Google Drive added the extension).

A cached file is verified as a download is (``verify_file``: the registered size and SHA-256 when
known, a complete HDF5 file for ``.h5``): ``gone weights`` reports a cached file that fails as
corrupt, and ``gone weights --download`` fetches it again (offline: one error line saying so).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import urllib.error
import urllib.request

from gonefiles.atomic import copy_file_atomic, write_atomic

ENV_DIR = "GONE_WEIGHTS_DIR"


class WeightsError(Exception):
    """A weight file cannot be found, downloaded or verified."""


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    name: str
    filename: str                 # file (or folder) name inside the cache directory
    description: str
    url: str | None               # direct download URL, None when only a manual download exists
    source_page: str              # where a person finds it
    size: int | None = None       # bytes, when known
    sha256: str | None = None     # when known
    is_directory: bool = False
    manual_steps: str = ""


REGISTRY = {
    "mask_rcnn_coco": WeightSpec(
        name="mask_rcnn_coco",
        filename="mask_rcnn_coco.h5",
        description="Mask R-CNN ResNet-101 FPN trained on MS COCO (Matterport, Keras 2 HDF5, ~246 MB)",
        url="https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5",
        source_page="https://github.com/matterport/Mask_RCNN/releases/tag/v2.0",
        size=None,      # about 257.6 MB; not pinned (no published figure)
        sha256=None,    # not published by Matterport
    ),
    "deepfill_v1_places2": WeightSpec(
        name="deepfill_v1_places2",
        filename="release_places2_256",
        description="DeepFill v1 (contextual attention) trained on Places2, TF1 checkpoint folder (Yu et al. 2018)",
        url=None,
        source_page="https://github.com/JiahuiYu/generative_inpainting/tree/v1.0.0 (README, 'Pretrained models', 'Places2')",
        is_directory=True,
        manual_steps=("download the 'Places2' Google Drive folder linked from that README (the v1.0.0 "
                      "branch, not master: master links DeepFill v2), rename 'checkpoint.txt' to "
                      "'checkpoint' if needed, and place the folder so that it contains "
                      "'checkpoint', 'snap-*.index' and 'snap-*.data-00000-of-00001'"),
    ),
}


def cache_dir():
    """$GONE_WEIGHTS_DIR, else ~/.cache/gone (not created here)."""
    env = os.environ.get(ENV_DIR)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "gone"


def _spec(name):
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}") from None


def target_path(name):
    """Where ``name`` is expected in the cache."""
    return cache_dir() / _spec(name).filename


def _checkpoint_ok(folder):
    folder = pathlib.Path(folder)
    return folder.is_dir() and any(folder.glob("*.index"))


def find_weight_file(name, verify=False):
    """Path of the cached weights for ``name`` ("mask_rcnn_coco" or "deepfill_v1_places2"), or None;
    with ``verify``, also None when the cached file fails ``verify_file`` (see ``cached_problem``)."""
    spec = _spec(name)
    path = target_path(name)
    if spec.is_directory:
        return path if _checkpoint_ok(path) else None
    if not (path.is_file() and path.stat().st_size > 0):
        return None
    return None if verify and verify_file(path, spec.sha256, spec.size) else path


def _h5_problem(path):
    """Why ``path`` is not a complete HDF5 file (it opens and every dataset reads back), or None."""
    import h5py

    if not h5py.is_hdf5(path):
        return "not an HDF5 file"

    def read(_, obj):
        if isinstance(obj, h5py.Dataset):
            obj[()]
        return None   # keep visiting
    try:
        with h5py.File(path, "r") as f:
            f.visititems(read)
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"not a complete HDF5 file ({first})"
    return None


def verify_file(path, sha256=None, size=None):
    """Why ``path`` is not a good copy of a weight file, or None: the checks a download passes
    (size and SHA-256 when known; ``.h5``: a complete HDF5 file)."""
    path = pathlib.Path(path)
    got_size = os.path.getsize(path)
    if size is not None and got_size != size:
        return f"{got_size} bytes, expected {size}"
    if sha256 is not None:
        digest = sha256_of(path)
        if digest.lower() != sha256.lower():
            return f"SHA-256 {digest}, expected {sha256}"
    if path.suffix == ".h5":
        return _h5_problem(path)
    return None


def cached_problem(name):
    """Why the cached file of ``name`` is corrupt (``verify_file``), or None (also when absent or a
    checkpoint folder, which is checked tensor by tensor when loaded)."""
    spec = _spec(name)
    path = target_path(name)
    if spec.is_directory or not (path.is_file() and path.stat().st_size > 0):
        return None
    return verify_file(path, spec.sha256, spec.size)


def sha256_of(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(name=None, dest=None, url=None, sha256=None, size=None, timeout=30.0, progress=True,
             spec=None):
    """Download a registered weight file (or any ``url``) to ``dest`` (default: the cache path).

    The data goes to a temporary file beside ``dest``; only after ``verify_file`` passes is it
    renamed onto ``dest`` (an existing, corrupt ``dest`` is replaced only then). Raises
    WeightsError with the target path on any failure (unreachable, timeout, HTTP error, checksum
    mismatch), saying so when ``dest`` exists and is corrupt."""
    if spec is None and name is not None:
        spec = _spec(name)
    if spec is not None:
        url = url or spec.url
        sha256 = sha256 or spec.sha256
        size = size or spec.size
        dest = dest or target_path(spec.name)
        if url is None:
            raise WeightsError(manual_instructions(spec.name))
    if url is None or dest is None:
        raise WeightsError("download needs a url and a destination")
    dest = pathlib.Path(dest)

    def fetch(tmp):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                bar = None
                if progress:
                    from tqdm import tqdm
                    bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False)
                try:
                    while True:
                        block = response.read(1 << 20)
                        if not block:
                            break
                        out.write(block)
                        if bar is not None:
                            bar.update(len(block))
                finally:
                    if bar is not None:
                        bar.close()
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise WeightsError(f"cannot download {url} ({reason}). Download it by hand and place it at "
                               f"{dest}") from None
        got_size = os.path.getsize(tmp)
        if size is not None and got_size != size:
            raise WeightsError(f"downloaded {got_size} bytes from {url}, expected {size}; nothing was "
                               f"written to {dest}")
        digest = sha256_of(tmp)
        if sha256 is not None and digest.lower() != sha256.lower():
            raise WeightsError(f"checksum mismatch for {url}: SHA-256 {digest}, expected {sha256}; "
                               f"nothing was written to {dest}")
        if dest.suffix == ".h5":
            problem = _h5_problem(tmp)
            if problem:
                raise WeightsError(f"{url} did not return a usable HDF5 file ({problem}); nothing was "
                                   f"written to {dest}")

    corrupt = verify_file(dest, sha256, size) if dest.is_file() else None
    # temp file beside dest, renamed only after the checks (gonefiles: user's umask, no leftovers)
    try:
        write_atomic(dest, fetch)
    except WeightsError as e:
        if corrupt:
            raise WeightsError(f"the cached {dest} is corrupt ({corrupt}) and was not fetched again: "
                               f"{e}") from None
        raise
    return dest


def manual_instructions(name):
    spec = _spec(name)
    where = target_path(name)
    if spec.url:
        return (f"{spec.name}: download {spec.url} and place it at {where} "
                f"(or pass its path on the command line)")
    return f"{spec.name}: from {spec.source_page}: {spec.manual_steps}; target folder: {where}"


def explain():
    """Human-readable text: for each weight file, where it comes from and whether it is cached."""
    lines = [f"Weights cache: {cache_dir()}  (set ${ENV_DIR} to change)", ""]
    for name, spec in REGISTRY.items():
        found = find_weight_file(name)
        lines.append(f"{name}: {spec.description}")
        lines.append(f"  source : {spec.url or spec.source_page}")
        if spec.sha256:
            lines.append(f"  sha256 : {spec.sha256}")
        elif not spec.is_directory:
            lines.append("  sha256 : not published (the download is checked to be complete HDF5; its SHA-256 is printed)")
        problem = cached_problem(name) if found else None
        if problem:
            lines.append(f"  status : CORRUPT at {found} ({problem})")
        else:
            lines.append(f"  status : {'found at ' + str(found) if found else 'missing, expected at ' + str(target_path(name))}")
        if not found or problem:
            if spec.url:
                lines.append(f"  get it : gone weights --download {name}   (or place the file at {target_path(name)})")
            else:
                lines.append(f"  get it : {spec.manual_steps}; place it at {target_path(name)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def copy_into_cache(name, source):
    """Copy an already downloaded file/folder into the cache (atomic for files)."""
    spec = _spec(name)
    dest = target_path(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if spec.is_directory:
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        copy_file_atomic(source, dest)
    return dest
