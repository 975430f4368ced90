"""Where outputs go and how they are written, for ``gone remove``, ``gone inpaint`` and Beam.

- **Names** (``plan_output_stems``): the output of ``<stem>.<ext>`` is ``<stem><out ext>`` (the
  input's extension, lower case; PNG for GIF, 16-bit and formats Pillow cannot write) and
  ``<stem>_mask.png``. When two inputs would produce the same file name (image or mask, compared
  case-insensitively, masks counted whether or not they are saved so that names never depend on
  ``--save-masks``), each gets its input extension appended to the stem: a.jpg + a.png ->
  a_jpg.jpg, a_png.png. Names that still clash (one name in two folders) get _2, _3, ... in
  input order, the first keeping its name.
- **Ownership** (``plan_outputs``): the output folder holds a manifest, ``.gone-manifest.json``
  (written atomically before the first output), recording the output names planned for each
  input and the files written. An output may replace only a file this manifest records; any
  other existing file is kept and the clash reported, with ``--overwrite`` or without, and the
  input is written under the next free name (``a_2.png``). An input the manifest knows keeps
  its recorded names on every rerun, whatever inputs were added since.
- **Never an input** (``inputs_written_over`` / ``refuse_inputs``): no planned output, mask,
  dead-letter file or manifest may be (or link to) an input file.
- **The one writer** (``write_job_outputs``): atomic (gonefiles), the original bytes for an image
  left untouched.
- **The one batch runner** (``load_item`` -> ``run_batch``: remove -> retry one image at a time
  -> write), called by ``gone remove``, ``gone inpaint`` and Beam's DoFn.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import pathlib
import warnings

MANIFEST_NAME = ".gone-manifest.json"
MANIFEST_VERSION = 1


class DiskFullError(OSError):
    """No space left while writing an output (the run stops; nothing half-written is left)."""


# -- names -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class OutputJob:
    source: object                  # the input image (pathlib.Path; a URI string on Beam)
    stem: str                       # output stem (the naming rule above)
    ext: str                        # output extension (".jpg", ".png", ...)
    fmt: str                        # Pillow format written
    image_out: object               # output image (pathlib.Path; a URI string on Beam)
    mask_out: object                # output mask
    mask_in: object = None          # the user's hole mask for this image (--masks, gone inpaint)
    clash: str | None = None        # why the image got another name than its rule name


def _probe_high_bit(path):
    """True when the file header says more than 8 bits per sample (16-bit TIFF -> PNG output)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            mode = im.mode
    except Exception:
        return False
    return mode.startswith("I") or mode == "F" or "16" in mode


def output_ext_for(path, loaded=None):
    """(extension, Pillow format) of ``path``'s output image (gonefiles.output_format_for; TIFF
    headers are read so that a 16-bit TIFF plans as PNG)."""
    from gonefiles.images import LoadedImage, output_format_for
    path = pathlib.Path(path)
    if loaded is None and path.suffix.lower() in (".tif", ".tiff") and path.exists() and _probe_high_bit(path):
        loaded = LoadedImage(rgb=None, format="TIFF", mode="I;16", high_bit_depth=True)
    return output_format_for(path, loaded)


def _names(stem, ext):
    return (f"{stem}{ext}".lower(), f"{stem}_mask.png".lower())


def plan_output_stems(paths, exts=None):
    """{input path: output stem} for a list of inputs, following the naming rule above.
    ``exts`` ({path: output extension}) defaults to ``output_ext_for``."""
    paths = [pathlib.PurePath(p) for p in paths]
    exts = {p: (exts or {}).get(p) or output_ext_for(p)[0] for p in paths}

    def clashing(stems):
        count = {}
        for p in paths:
            for n in _names(stems[p], exts[p]):
                count[n] = count.get(n, 0) + 1
        return {p for p in paths if any(count[n] > 1 for n in _names(stems[p], exts[p]))}

    stems = {p: p.stem for p in paths}
    for p in clashing(stems):
        tag = p.suffix.lower().lstrip(".") or "noext"
        stems[p] = f"{p.stem}_{tag}"
    still = clashing(stems)
    if still:
        used = set()
        for p in paths:
            if p not in still:
                used.update(_names(stems[p], exts[p]))
        for p in paths:
            if p not in still:
                continue
            base, k = stems[p], 1
            while any(n in used for n in _names(stems[p], exts[p])):
                k += 1
                stems[p] = f"{base}_{k}"
            used.update(_names(stems[p], exts[p]))
    return stems


# -- the output folder and its manifest ---------------------------------------------------------------
class LocalFolder:
    """A local output folder: names -> paths, existence, the manifest (read / atomic write)."""

    def __init__(self, root):
        self.root = pathlib.Path(root)

    def join(self, name):
        return self.root / name

    def exists(self, name):
        return os.path.lexists(self.root / name)

    def read_text(self, name):
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_text(self, name, text):
        from gonefiles.atomic import write_text_atomic
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.root / name, text)


def identity(path):
    """A comparable identity of an input: its resolved absolute path (links followed), or the URI."""
    text = str(path)
    if "://" in text and not text.startswith("file://"):
        return text
    return str(pathlib.Path(text).resolve())


class Manifest:
    """``.gone-manifest.json`` of an output folder: {"version", "planned": {input identity: stem},
    "written": [file names]}. An unreadable manifest counts as none (nothing is owned: every
    existing file is kept)."""

    def __init__(self, folder):
        self.folder = folder
        self.planned, self.written, self.problem = {}, set(), None
        text = folder.read_text(MANIFEST_NAME)
        if text is not None:
            try:
                data = json.loads(text)
                self.planned = {str(k): dict(v) for k, v in data.get("planned", {}).items()}
                self.written = {str(n) for n in data.get("written", [])}
            except (ValueError, TypeError, AttributeError) as e:
                self.problem = f"{MANIFEST_NAME} unreadable ({e}); no existing file is replaced"
                self.planned, self.written = {}, set()
        self._saved = text

    def owned(self):
        """Lower-case names this program planned or wrote in the folder."""
        names = {n.lower() for n in self.written}
        for entry in self.planned.values():
            names.update(n.lower() for n in (entry.get("image"), entry.get("mask")) if n)
        return names

    def record(self, jobs=(), written=()):
        for j in jobs:
            self.planned[identity(j.source)] = {"stem": j.stem, "image": _basename(j.image_out),
                                                "mask": _basename(j.mask_out)}
        self.written.update(_basename(p) for p in written)

    def save(self):
        """Write the manifest atomically when it changed."""
        text = json.dumps({"version": MANIFEST_VERSION, "planned": dict(sorted(self.planned.items())),
                           "written": sorted(self.written)}, indent=1) + "\n"
        if text != self._saved:
            try:
                self.folder.write_text(MANIFEST_NAME, text)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise DiskFullError(e.errno, f"no space left on the device writing {MANIFEST_NAME}") from None
                raise
            self._saved = text


def _basename(path):
    return str(path).rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass
class OutputPlan:
    """The jobs of a run, the manifest they were planned with, the inputs they must never replace
    and ``clobber``: [(output, input)] planned outputs that are inputs (the run must refuse).
    ``commit()`` records the planned names (call it before the first output is written)."""
    jobs: list
    manifest: Manifest
    inputs: list = dataclasses.field(default_factory=list)
    clobber: list = dataclasses.field(default_factory=list)

    def commit(self, written=()):
        self.manifest.record(self.jobs, written)
        self.manifest.save()


def plan_outputs(files, outdir, save_masks=False, folder=None, extra_inputs=(), exts=None):
    """OutputPlan for the inputs ``files`` (same order) writing into ``outdir`` (or ``folder``, an
    object like LocalFolder): names by the naming rule, then the manifest's names for the inputs it
    knows (stable across reruns), and the next free name where an existing file (the image, and
    the mask with ``save_masks``) is not the program's own (``job.clash`` says why). An output
    that would be an input is not renamed but listed in ``clobber``. ``extra_inputs``: other
    files read (the masks). ``exts``: {file: (ext, fmt)} when known (default ``output_ext_for``)."""
    folder = folder if folder is not None else LocalFolder(outdir)
    manifest = Manifest(folder)
    inputs = list(files) + list(extra_inputs)
    input_ids = {identity(p) for p in inputs}
    formats = {f: (exts or {}).get(f) or output_ext_for(f) for f in files}
    rule = plan_output_stems(list(formats), {pathlib.PurePath(f): e for f, (e, _) in formats.items()})
    owned = manifest.owned()
    mine = {identity(f): manifest.planned.get(identity(f)) for f in files}
    taken = set()
    for key, entry in manifest.planned.items():      # other inputs' earlier outputs stay theirs
        if key not in mine:
            taken.update(n.lower() for n in (entry.get("image"), entry.get("mask")) if n)

    def foreign(name):
        """An existing file in the folder that this program did not plan (an input is not
        renamed around: it is refused)."""
        return (name.lower() not in owned and folder.exists(name)
                and identity(folder.join(name)) not in input_ids)

    def recorded(f):
        """The manifest's stem for ``f`` when it still fits (same output extension), else None."""
        entry = mine[identity(f)]
        ext = formats[f][0]
        if entry and entry.get("image", "").lower() == f"{entry.get('stem')}{ext}".lower():
            return entry["stem"]
        return None

    for f in files:                                   # recorded names first: a new input never takes them
        if recorded(f) is not None:
            taken.update(_names(recorded(f), formats[f][0]))
    jobs = []
    for f in files:
        ext, fmt = formats[f]
        clash = None
        stem = recorded(f)
        if stem is None:
            stem = base = rule[pathlib.PurePath(f)]
            k = 1
            while True:
                checked = [f"{stem}{ext}"] + ([f"{stem}_mask.png"] if save_masks else [])
                kept = [n for n in checked if foreign(n)]
                if not kept and not any(n in taken for n in _names(stem, ext)):
                    break
                if kept and clash is None:
                    clash = f"{folder.join(kept[0])} exists and was not written by gone; kept"
                k += 1
                stem = f"{base}_{k}"
            if clash:
                clash += f", output written as {stem}{ext}"
        taken.update(_names(stem, ext))
        jobs.append(OutputJob(f, stem, ext, fmt, folder.join(f"{stem}{ext}"), folder.join(f"{stem}_mask.png"),
                              clash=clash))
    plan = OutputPlan(jobs, manifest, inputs)
    plan.clobber = refuse_inputs([o for j in jobs for o in [j.image_out] + ([j.mask_out] if save_masks else [])]
                                 + [folder.join(MANIFEST_NAME)], inputs)
    return plan


# -- never an input ---------------------------------------------------------------------------------
def _file_key(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def refuse_inputs(outputs, inputs):
    """[(output, input)] for every path in ``outputs`` that is (or links to) one of ``inputs``
    (resolved path, or the same file through a hard link). Every path the program writes passes
    this check: outputs, masks, the dead-letter file, the manifest."""
    known = {}
    for p in inputs:
        known[identity(p)] = p
        key = _file_key(p)
        if key:
            known[key] = p
    bad = []
    for out in outputs:
        hit = known.get(identity(out)) or known.get(_file_key(out))
        if hit is not None:
            bad.append((out, hit))
    return bad


def inputs_written_over(jobs, save_masks, extra_inputs=()):
    """[(output, input)] for every planned output of ``jobs`` that is (or links to) an input file
    (the jobs' sources and masks, and ``extra_inputs``)."""
    inputs = [j.source for j in jobs] + [j.mask_in for j in jobs if j.mask_in] + list(extra_inputs)
    outs = [o for j in jobs for o in [j.image_out] + ([j.mask_out] if save_masks else [])]
    outs += sorted({pathlib.Path(j.image_out).parent / MANIFEST_NAME for j in jobs
                    if isinstance(j.image_out, pathlib.Path)})
    return refuse_inputs(outs, inputs)


# -- user masks ------------------------------------------------------------------------------------
def mask_index(folder):
    """{stem: [mask files]} of a mask folder; ``<stem>_mask.<ext>`` is also filed under <stem>."""
    from gonefiles.images import IMAGE_EXTENSIONS
    index = {}
    for p in sorted(pathlib.Path(folder).iterdir()):
        if not p.is_file() or p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        index.setdefault(p.stem, []).append(p)
        if p.stem.endswith("_mask") and len(p.stem) > 5:
            index.setdefault(p.stem[:-5], []).append(p)
    return index


def find_mask(image_path, index, folder):
    """The mask for ``image_path`` in a ``mask_index``; raises ValueError when none or several."""
    stem = pathlib.PurePath(image_path).stem
    me = identity(image_path)
    found = [p for p in index.get(stem, []) if identity(p) != me]   # masks beside their images
    exact = [p for p in found if p.stem == stem]
    found = exact or found
    if not found:
        raise ValueError(f"{image_path}: no mask {stem}.* or {stem}_mask.* in {folder}")
    if len(found) > 1:
        raise ValueError(f"{image_path}: several masks match: {', '.join(p.name for p in found)}")
    return found[0]


def match_masks(files, folder):
    """``--masks DIR`` / ``gone inpaint --mask DIR``: (files that have exactly one mask, {file:
    mask}, every mask file of the folder, [(file, one-line problem)] for the others). A mask kept
    beside its image (the mask folder is an input folder) is not an input of its own."""
    index = mask_index(folder)
    mask_files = [p for ps in index.values() for p in ps]
    found = {}
    for f in files:
        try:
            found[f] = find_mask(pathlib.PurePath(str(f)), index, folder)
        except ValueError as e:
            found[f] = e
    used = {identity(m) for m in found.values() if not isinstance(m, Exception)}
    files = [f for f in files if identity(f) not in used]
    problems = [(f, str(found[f])) for f in files if isinstance(found[f], Exception)]
    files = [f for f in files if not isinstance(found[f], Exception)]
    return files, {f: found[f] for f in files}, mask_files, problems


# -- one image -> its output files ---------------------------------------------------------------------
def outputs_needed(job, save_masks, overwrite, exists=None):
    """Which of ("image", "mask") must be written: missing ones (all with ``overwrite``; an
    existing file is the program's own, ``plan_outputs`` saw to that)."""
    exists = exists or (lambda p: os.path.lexists(p))
    need = []
    if overwrite or not exists(job.image_out):
        need.append("image")
    if save_masks and (overwrite or not exists(job.mask_out)):
        need.append("mask")
    return tuple(need)


def write_job_outputs(job, loaded, result, which=("image", "mask")):
    """Write the outputs named in ``which`` for one image, atomically; returns the paths written.
    An image left untouched keeps the original bytes when its format is kept."""
    import numpy as np

    from gonefiles.atomic import copy_file_atomic
    from gonefiles.images import write_image_atomic, write_mask_atomic
    written = []
    source = pathlib.Path(job.source)
    try:
        if "image" in which:
            if result.status != "inpainted" and source.suffix.lower() == job.ext and loaded.frames == 1:
                copy_file_atomic(source, job.image_out)   # untouched: keep the original bytes
            else:
                write_image_atomic(job.image_out, np.asarray(result.output), format=job.fmt,
                                   exif=getattr(loaded, "exif", None),
                                   icc_profile=getattr(loaded, "icc_profile", None))
            written.append(job.image_out)
        if "mask" in which:
            write_mask_atomic(job.mask_out, result.hole_mask)
            written.append(job.mask_out)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(e.errno, f"no space left on the device writing {pathlib.Path(job.image_out).parent}") from None
        raise
    return written


# -- the batch runner -------------------------------------------------------------------------------
@dataclasses.dataclass
class Item:
    """A job read and decoded, on its way to the models."""
    job: OutputJob
    loaded: object                  # gonefiles.LoadedImage
    which: tuple                    # outputs to write ("image" and/or "mask")
    hole: object = None             # bool HxW: the user's mask (--masks, gone inpaint)
    data: bytes | None = None       # original bytes of a non-local input (Beam)


@dataclasses.dataclass
class Outcome:
    item: Item
    result: object = None           # gone.pipeline.RemovalResult
    written: list = dataclasses.field(default_factory=list)
    error: str | None = None        # one line when the image failed


def load_item(job, which, local_source=None):
    """Read and decode ``job``'s input (``local_source``: a local copy of a remote input) and its
    mask; raises gonefiles.ImageReadError (or ValueError for a mask of another size)."""
    from gonefiles.images import load_image, read_mask
    loaded = load_image(local_source or job.source)
    hole = None if job.mask_in is None else read_mask(job.mask_in, loaded.rgb.shape)
    return Item(job, loaded, tuple(which), hole)


def remove_batch(remover, items, lock=None, keep="none"):
    """[(item, RemovalResult or the exception)]: one ``remover.remove`` call for the batch; if it
    fails, the images are retried one at a time so that only the bad one fails. ``lock`` (a
    context manager) serialises the model calls of threads sharing one remover. ``keep="subject"``
    keeps each photo's subject(s) (``gone.subject.remove_keeping_subject``; detections only)."""
    import contextlib

    from gone.pipeline import LargeCropWarning
    try:
        with (lock or contextlib.nullcontext()), warnings.catch_warnings():
            warnings.simplefilter("ignore", LargeCropWarning)   # reported through the message
            images = [it.loaded.rgb for it in items]
            if keep == "subject":
                from gone.subject import remove_keeping_subject
                results = remove_keeping_subject(remover, images)
            else:
                holes = None if items[0].hole is None else [it.hole for it in items]
                results = remover.remove(images, hole_masks=holes)
        return list(zip(items, results))
    except Exception as e:
        if len(items) == 1:
            return [(items[0], e)]
        out = []
        for it in items:
            out.extend(remove_batch(remover, [it], lock, keep))
        return out


def write_item(item, result):
    """``write_job_outputs`` for a loaded Item: the paths written."""
    return write_job_outputs(item.job, item.loaded, result, item.which)


def run_batch(remover, items, write=write_item, lock=None, keep="none"):
    """load -> **remove -> retry one image at a time -> write**: an Outcome per item. ``write``
    (item, result) -> paths defaults to ``write_item``; DiskFullError stops the run (raised), any
    other failure is the image's one-line error."""
    outcomes = []
    for item, result in remove_batch(remover, items, lock, keep):
        if isinstance(result, Exception):
            outcomes.append(Outcome(item, error=f"{type(result).__name__}: {result}"))
            continue
        try:
            written = write(item, result)
        except DiskFullError:
            raise
        except Exception as e:
            outcomes.append(Outcome(item, result, error=f"cannot write output: {type(e).__name__}: {e}"))
            continue
        outcomes.append(Outcome(item, result, list(written)))
    return outcomes
