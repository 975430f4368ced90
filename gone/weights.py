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
- ``big-lama``: LaMa's big-lama (Suvorov et al. 2022), the archive ``big-lama.zip`` (``big-lama/``
  with ``config.yaml`` and the PyTorch Lightning checkpoint ``models/best.ckpt``) at the direct URL
  of the advimman/lama README. The download is checked (a complete zip: every member read back
  against its CRC; the checkpoint read by ``lama``'s safe reader, generator keys, shapes and finite
  values checked) and only the generator is kept: ``lama.convert`` writes it into the cache as the
  native ``big_lama.npz``; the archive is not kept. Its SHA-256 is not published and not pinned.
  Licence: the code is Apache-2.0; no separate weight licence is stated; trained on Places2, whose
  terms are non-commercial.

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
import tempfile
import urllib.error
import zipfile
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
    unpack: str | None = None     # "lama-zip": the URL is big-lama.zip, its generator is converted
    licence: str = ""             # licence facts shown by `gone weights`


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
    "big-lama": WeightSpec(
        name="big-lama",
        filename="big_lama.npz",
        description=("LaMa big-lama generator (Suvorov et al. 2022) trained on Places2, converted from "
                     "big-lama.zip's models/best.ckpt (~200 MB)"),
        url="https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",
        source_page="https://github.com/advimman/lama (README, 'Inference', big-lama)",
        unpack="lama-zip",
        licence=("code Apache-2.0; no separate weight licence is stated; trained on Places2, whose "
                 "terms are non-commercial"),
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


def _npz_problem(path):
    """Why ``path`` is not a readable LaMa weight file (``lama``'s reader), or None."""
    try:
        from lama.checkpoint import CheckpointError, load_npz_state
    except ImportError as e:
        return f"the lama package is not available ({e})"
    try:
        load_npz_state(path)
    except CheckpointError as e:
        return str(e)
    return None


def verify_file(path, sha256=None, size=None):
    """Why ``path`` is not a good copy of a weight file, or None: the checks a download passes
    (size and SHA-256 when known; ``.h5``: a complete HDF5 file; ``.npz``: LaMa weights that
    ``lama``'s reader accepts)."""
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
    if path.suffix == ".npz":
        return _npz_problem(path)
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
        fetch_url(url, tmp, dest, timeout=timeout, progress=progress)
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
        if spec is not None and spec.unpack == "lama-zip":
            _download_lama_zip(url, dest, timeout=timeout, progress=progress)
        else:
            write_atomic(dest, fetch)
    except WeightsError as e:
        if corrupt:
            raise WeightsError(f"the cached {dest} is corrupt ({corrupt}) and was not fetched again: "
                               f"{e}") from None
        raise
    return dest


def fetch_url(url, tmp, dest, timeout=30.0, progress=True, hint=None):
    """Copy the body of ``url`` into the file ``tmp`` (a progress bar when ``progress``); any
    network failure is a WeightsError naming ``dest``, the place to put a hand download (or
    ``hint``, what to do by hand instead)."""
    dest = pathlib.Path(dest)
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
        raise WeightsError(f"cannot download {url} ({reason}). "
                           + (hint or f"Download it by hand and place it at {dest}")) from None


LAMA_MEMBERS = ("config.yaml", "models/best.ckpt")


def _unpack_lama_zip(archive, folder, url):
    """Copy big-lama.zip's ``<top>/config.yaml`` and ``<top>/models/best.ckpt`` into ``folder``
    (no other member, no path from the archive used as a path here; every byte read back against
    the zip's CRC). Returns ``folder``."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            ckpts = [n for n in names if n == "models/best.ckpt" or n.endswith("/models/best.ckpt")]
            if len(ckpts) != 1:
                raise WeightsError(f"{url} is not the big-lama archive (expected one models/best.ckpt, "
                                   f"found {len(ckpts)})")
            top = ckpts[0][:-len("models/best.ckpt")]
            (folder / "models").mkdir(parents=True)
            for member in LAMA_MEMBERS:
                if top + member not in names:
                    raise WeightsError(f"{url} is not the big-lama archive ({top + member} is missing)")
                with z.open(top + member) as src, open(folder / member, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise WeightsError(f"{url} did not return a complete zip archive ({e})") from None
    return folder


def _download_lama_zip(url, dest, timeout=30.0, progress=True):
    """big-lama.zip -> the generator converted by ``lama.convert`` into ``dest`` (atomic: nothing
    is written to ``dest`` unless every check passes). The archive and its unpacked files live
    in a temporary folder beside ``dest``, removed afterwards."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".big-lama-", dir=dest.parent) as tmp:
        tmp = pathlib.Path(tmp)
        archive = tmp / "big-lama.zip"
        fetch_url(url, archive, dest, timeout=timeout, progress=progress, hint=_lama_by_hand(dest))
        folder = _unpack_lama_zip(archive, tmp / "big-lama", url)
        archive.unlink()
        try:
            from lama import CheckpointError, LamaConfigError
            from lama.convert import convert
        except ImportError as e:
            raise WeightsError(f"converting big-lama needs the lama package ({e})") from None
        try:
            convert(folder, dest)
        except (CheckpointError, LamaConfigError) as e:
            raise WeightsError(f"{url} did not hold usable LaMa weights ({e}); nothing was written to "
                               f"{dest}") from None
    return dest


def _lama_by_hand(dest):
    return (f"Download it by hand, unzip it and pass the big-lama folder with --lama-weights, or "
            f"convert it once: python -m lama.convert big-lama {dest}")


def manual_instructions(name):
    spec = _spec(name)
    where = target_path(name)
    if spec.unpack == "lama-zip":
        return f"{spec.name}: run `gone weights --download {spec.name}` ({spec.url}); {_lama_by_hand(where)}"
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
        if spec.licence:
            lines.append(f"  licence: {spec.licence}")
        if spec.sha256:
            lines.append(f"  sha256 : {spec.sha256}")
        elif spec.unpack == "lama-zip":
            lines.append("  sha256 : not published (the archive is checked to be a complete zip whose "
                         "best.ckpt LaMa's reader accepts; its generator is kept, converted)")
        elif not spec.is_directory:
            lines.append("  sha256 : not published (the download is checked to be complete HDF5; its SHA-256 is printed)")
        problem = cached_problem(name) if found else None
        if problem:
            lines.append(f"  status : CORRUPT at {found} ({problem})")
        else:
            lines.append(f"  status : {'found at ' + str(found) if found else 'missing, expected at ' + str(target_path(name))}")
        if not found or problem:
            if spec.unpack == "lama-zip":
                lines.append(f"  get it : gone weights --download {name}   (or: unzip big-lama.zip, then "
                             f"python -m lama.convert big-lama {target_path(name)})")
            elif spec.url:
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
