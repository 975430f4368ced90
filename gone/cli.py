"""Command line: ``gone remove INPUT... -o OUTDIR``, ``gone inpaint --image --mask --output``,
``gone weights`` (and ``gone label``, gone/label_app.py).

Exit codes: 0 all files ok, 1 some files failed (or the disk filled up), 2 usage or setup error
(bad arguments, no inputs, an output that would replace an input, models cannot be loaded),
130 Ctrl-C, 143 SIGTERM. Keras/TensorFlow are imported only when models are built.

For other front ends (``python -m gone.beam``): ``add_remove_options``, ``validate_remove_args``,
``build_remover``, ``plan_output_stems`` / ``plan_outputs`` (the naming rule) and
``write_outputs`` / ``remove_to_files`` (one image -> its output files, as ``gone remove``).
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import glob
import os
import pathlib
import signal
import sys
import time

# TensorFlow's environment defaults are set by importing gone (gonefiles/quiet.py), before
# TensorFlow loads.
from gone.models import DETECTOR_RESIZE_MODES, DETECTOR_SIZE, FAST_DETECTOR_SIZE  # noqa: E402 (no Keras)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _err(msg):
    print(f"gone: {msg}", file=sys.stderr, flush=True)


def package_version():
    """The installed package's version (``gone --version``); gone.__version__ when run from a
    checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("gone")
    except PackageNotFoundError:
        from gone import __version__
        return __version__


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Shows each option's default in --help: appends "(default: X)" to the help of an option that
    takes a value and has a default, unless its help already names the default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS)
                and "default" not in text.lower()):
            text += " (default: %(default)s)"
        return text


def _show_defaults(parser):
    """Give `parser` and all its subcommand parsers the DefaultsHelpFormatter."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _show_defaults(subparser)
    return parser


def build_parser():
    p = argparse.ArgumentParser(prog="gone", description="Remove people (or other objects) from photos: "
                                "Mask R-CNN finds them, DeepFill v1 fills the hole.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("remove", help="remove people from image files, folders or globs",
                       description="Remove people from images. Outputs are written to OUTDIR as "
                       "<stem>.<ext> (16-bit and unwritable formats become PNG).")
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (their images) or glob patterns")
    r.add_argument("-o", "--outdir", required=True, help="output folder (created if needed)")
    add_remove_options(r)
    i = sub.add_parser("inpaint", help="fill your own hole masks (white = hole); no detection",
                       description="Inpaint the white pixels of a mask (Yu et al.'s test.py flags). Folder "
                       "form: --image DIR --mask DIR --output DIR, masks matched by file stem; images "
                       "without a mask are reported and the rest done. Pixels outside the hole are kept.")
    add_inpaint_options(i)
    w = sub.add_parser("weights", help="where the weight files come from; download them",
                       description="Explain where the published weights come from and whether they are cached; "
                       "--download fetches those with a direct URL (checksummed, atomic).")
    w.add_argument("--download", nargs="*", metavar="NAME", default=None,
                   help="download NAME(s) (default: all downloadable)")
    w.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    from gone import label_app
    label_app.add_arguments(sub.add_parser(
        "label", help="blind labeling web app for experiment outputs (docs/labeling.md)",
        description="Serve the blinded results of experiment outputs to raters; --export writes "
        "labels/<rater>.csv for experiments/make_table.py."))
    return _show_defaults(p)


def _expand_inputs(inputs):
    """(files, errors): files from paths, folders (non-recursive) and glob patterns."""
    from gone.io import IMAGE_EXTENSIONS
    files, errors = [], []
    for item in inputs:
        path = pathlib.Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                errors.append(f"{item}: folder has no image files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif glob.has_magic(item):
            found = sorted(pathlib.Path(p) for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                errors.append(f"{item}: pattern matches no files")
            files.extend(found)
        else:
            errors.append(f"{item}: no such file or folder")
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, errors


def _parse_classes(text):
    if text.strip().lower() in ("all", "*"):
        return None
    parts = [c.strip() for c in text.split(",") if c.strip()]
    return tuple(int(c) if c.isdigit() else c for c in parts)


FALLBACK_INPAINTER_KINDS = ("auto", "deepfill", "deepfill-random", "patchmatch", "telea", "ns")


def inpainter_kinds():
    """The ``--inpainter`` choices (gone.inpainters.INPAINTER_KINDS)."""
    try:
        from gone.inpainters import INPAINTER_KINDS
    except ImportError:
        return FALLBACK_INPAINTER_KINDS
    return tuple(INPAINTER_KINDS)


def _add_inpainter_option(parser):
    parser.add_argument("--inpainter", choices=inpainter_kinds(), default="auto",
                        help="what fills the hole: auto = DeepFill v1 when its checkpoint is given or "
                             "cached, else PatchMatch; deepfill-random = untrained DeepFill (plumbing "
                             "tests only) (default: auto)")


def add_remove_options(parser):
    """Every ``gone remove`` option except the inputs and ``-o`` on ``parser`` (so that
    ``python -m gone.beam`` takes the same options with its own --input/--output)."""
    from gone.masks import STRATEGIES
    parser.add_argument("--strategy", choices=STRATEGIES, default="dilated", help="hole shape (default: dilated)")
    parser.add_argument("--dilation", default=None,
                        help="dilated strategy radius, >= 0: pixels ('15', '15px') or fraction of the instance "
                             "size ('0.05', '5%%'); default 0.05")
    parser.add_argument("--classes", default="person",
                        help="comma-separated COCO class names or ids 1-80 to remove (default: person; "
                             "'all' = every class)")
    parser.add_argument("--min-score", type=float, default=0.7, help="minimum detection score (default 0.7)")
    parser.add_argument("--mrcnn-weights", default=None, help="Mask R-CNN .h5 (default: the cached mask_rcnn_coco.h5)")
    parser.add_argument("--allow-partial-weights", action="store_true",
                        help="accept a Mask R-CNN weight file that lacks some of the model's layers (they stay "
                             "untrained); refused by default")
    parser.add_argument("--inpaint-checkpoint", default=None,
                        help="DeepFill v1 checkpoint folder or prefix (default: the cached release_places2_256)")
    _add_inpainter_option(parser)
    parser.add_argument("--masks", default=None, metavar="DIR",
                        help="use the hole masks in DIR instead of detecting (DIR/<stem>.<ext> or "
                             "<stem>_mask.<ext>, white = hole); no Mask R-CNN needed (default: none, "
                             "detect with Mask R-CNN)")
    parser.add_argument("--large-crop", choices=("process", "skip", "warn"), default="warn",
                        help="what to do when the hole covers > 50%% of an image (default: warn)")
    parser.add_argument("--working-size", type=int, default=None,
                        help="largest region side fed to the inpainter (default 512; 256 with --fast)")
    parser.add_argument("--detector-size", type=int, default=None, metavar="N",
                        help="Mask R-CNN input size, IMAGE_MAX_DIM, a multiple of 64 (default 1024, "
                             "Matterport's; 640 with --fast)")
    parser.add_argument("--detector-resize", choices=DETECTOR_RESIZE_MODES, default=None,
                        help="square = Matterport's padding to N x N; fit = the same scale padded only "
                             "to multiples of 64, ~40%% less detection time on a 16:9 photo, detections "
                             "close to square's (default: square; fit with --fast)")
    parser.add_argument("--fast", action="store_true",
                        help="speed preset: --detector-size 640 --detector-resize fit --working-size 256 "
                             "(options given explicitly win); smaller people are missed more often, "
                             "see docs/benchmarks/end_to_end.md (default: off, full fidelity)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per detector / regions per inpainter call")
    parser.add_argument("--save-masks", action="store_true", help="also write <stem>_mask.png (255 = hole)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (never an input file: that is always refused)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file notes")
    return parser


def add_inpaint_options(parser):
    """``gone inpaint``: Yu et al.'s test.py flags (--image --mask --output --checkpoint_dir)."""
    parser.add_argument("--image", required=True, help="input image, or a folder of images")
    parser.add_argument("--mask", required=True,
                        help="hole mask (white = hole), or a folder of masks matched by file stem "
                             "(<stem>.<ext> or <stem>_mask.<ext>)")
    parser.add_argument("--output", required=True, help="output image file, or a folder for the folder form")
    parser.add_argument("--checkpoint_dir", "--checkpoint-dir", dest="checkpoint_dir", default=None,
                        help="DeepFill v1 checkpoint (default: the cached release_places2_256)")
    _add_inpainter_option(parser)
    parser.add_argument("--working-size", type=int, default=512,
                        help="largest region side fed to the inpainter (default 512)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file notes")
    return parser


# --fast preset: (option, full-fidelity default, fast value)
SPEED_PRESET = (("working_size", 512, 256), ("detector_size", DETECTOR_SIZE, FAST_DETECTOR_SIZE),
                ("detector_resize", "square", "fit"))


def apply_speed_preset(args):
    """Fill the speed options the user left unset: full fidelity, or ``--fast``'s values."""
    fast = bool(getattr(args, "fast", False))
    for name, full, quick in SPEED_PRESET:
        if getattr(args, name, None) is None:
            setattr(args, name, quick if fast else full)
    return args


def _validate_remove_args(args):
    """Raise ValueError (one line) for any bad ``gone remove`` option value (after filling the
    speed options: ``apply_speed_preset``)."""
    from gone.masks import class_ids_for, coco_class_names, parse_dilation
    apply_speed_preset(args)
    if args.dilation is not None:
        value = parse_dilation(args.dilation)
        if value < 0:
            raise ValueError(f"invalid dilation {args.dilation!r}: must be >= 0")
    classes = _parse_classes(args.classes)
    if classes is not None:
        if not classes:
            raise ValueError(f"--classes {args.classes!r} names no class; give COCO class names or ids, or 'all'")
        n = len(coco_class_names())
        for ident in sorted(class_ids_for(classes)):
            if not 1 <= ident < n:
                raise ValueError(f"unknown class id {ident} in --classes; COCO ids are 1..{n - 1} "
                                 f"(0 is the background)")
    if not 0.0 <= args.min_score <= 1.0:
        raise ValueError(f"--min-score must be in [0, 1], got {args.min_score}")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    if args.working_size < 8 or args.working_size % 8:
        raise ValueError("--working-size must be a positive multiple of 8")
    if args.detector_size < 64 or args.detector_size % 64:
        raise ValueError(f"--detector-size must be a positive multiple of 64, got {args.detector_size}")
    masks = getattr(args, "masks", None)
    if masks is not None and not pathlib.Path(masks).is_dir():
        raise ValueError(f"--masks {masks}: not a folder")


validate_remove_args = _validate_remove_args


def build_inpainter(kind="auto", checkpoint=None):
    """The inpainter for ``--inpainter kind`` (``gone.pipeline.make_inpainter_for``); a
    checkpoint given for a DeepFill kind is checked before any network is built."""
    from gone.models import check_inpainter_checkpoint
    from gone.pipeline import make_inpainter_for
    if kind not in ("auto", "deepfill"):
        checkpoint = None          # the other kinds take no checkpoint
    if checkpoint is not None:
        check_inpainter_checkpoint(checkpoint)
    if kind == "deepfill-random":
        from gone.quiet import import_backend_quietly
        import_backend_quietly()
    return make_inpainter_for(kind, checkpoint)


def build_remover(args):
    """The real models for ``gone remove`` options ``args`` (lazy imports; tests replace this
    function with fakes). Every weight file is checked before any model is built."""
    from gone.models import check_detector_weights, load_detector
    from gone.pipeline import PeopleRemover
    from gone.weights import find_weight_file
    _validate_remove_args(args)
    weights = None
    need_detector = not getattr(args, "masks", None)
    allow_partial = bool(getattr(args, "allow_partial_weights", False))
    if need_detector:
        weights = args.mrcnn_weights or find_weight_file("mask_rcnn_coco")
        check_detector_weights(weights, allow_partial=allow_partial)
    inpainter = build_inpainter(getattr(args, "inpainter", "auto"), args.inpaint_checkpoint)
    detector = None
    if need_detector:
        detector = load_detector(weights, images_per_gpu=max(1, args.batch_size), allow_partial=allow_partial,
                                 image_max_dim=args.detector_size, resize_mode=args.detector_resize)
    return PeopleRemover(detector, inpainter, strategy=args.strategy, dilation=args.dilation,
                         classes=_parse_classes(args.classes), min_score=args.min_score,
                         large_crop=args.large_crop, working_size=args.working_size,
                         batch_size=args.batch_size)


# -- output names --------------------------------------------------------------------------------
# Output of an input <stem>.<ext>: OUTDIR/<stem><out ext> (the input's extension, lower case; PNG
# for GIF, 16-bit and formats Pillow cannot write) and OUTDIR/<stem>_mask.png. When two inputs
# would produce the same file name (image or mask, compared case-insensitively, masks counted
# whether or not --save-masks is given so that names never depend on it), each of them gets its
# input extension appended to the stem: a.jpg + a.png -> a_jpg.jpg, a_png.png (masks
# a_jpg_mask.png, a_png_mask.png). Names that still clash (same name in two folders) get _2, _3,
# ... in input order, the first keeping its name. Inputs are never written over.

@dataclasses.dataclass
class OutputJob:
    source: pathlib.Path          # the input image
    stem: str                     # output stem (see the naming rule above)
    ext: str                      # output extension (".jpg", ".png", ...)
    fmt: str                      # Pillow format written
    image_out: pathlib.Path
    mask_out: pathlib.Path
    mask_in: pathlib.Path | None = None   # --masks: the user's hole mask for this image


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
    """(extension, Pillow format) of ``path``'s output image (gone.io.output_format_for; TIFF
    headers are read so that a 16-bit TIFF plans as PNG)."""
    from gone.io import LoadedImage, output_format_for
    path = pathlib.Path(path)
    if loaded is None and path.suffix.lower() in (".tif", ".tiff") and _probe_high_bit(path):
        loaded = LoadedImage(rgb=None, format="TIFF", mode="I;16", high_bit_depth=True)
    return output_format_for(path, loaded)


def plan_output_stems(paths, exts=None):
    """{input path: output stem} for a list of inputs, following the naming rule above.
    ``exts`` ({path: output extension}) defaults to ``output_ext_for``."""
    paths = [pathlib.Path(p) for p in paths]
    exts = {p: (exts or {}).get(p) or output_ext_for(p)[0] for p in paths}

    def names(p, stem):
        return (f"{stem}{exts[p]}".lower(), f"{stem}_mask.png".lower())

    def clashing(stems):
        count = {}
        for p in paths:
            for n in names(p, stems[p]):
                count[n] = count.get(n, 0) + 1
        return {p for p in paths if any(count[n] > 1 for n in names(p, stems[p]))}

    stems = {p: p.stem for p in paths}
    for p in clashing(stems):
        tag = p.suffix.lower().lstrip(".") or "noext"
        stems[p] = f"{p.stem}_{tag}"
    still = clashing(stems)
    if still:
        used = set()
        for p in paths:
            if p not in still:
                used.update(names(p, stems[p]))
        for p in paths:
            if p not in still:
                continue
            base, k = stems[p], 1
            while any(n in used for n in names(p, stems[p])):
                k += 1
                stems[p] = f"{base}_{k}"
            used.update(names(p, stems[p]))
    return stems


def plan_outputs(files, outdir):
    """OutputJob for each input (same order), names unique by the naming rule above."""
    outdir = pathlib.Path(outdir)
    formats = {pathlib.Path(f): output_ext_for(f) for f in files}
    stems = plan_output_stems(list(formats), {p: e for p, (e, _) in formats.items()})
    jobs = []
    for f, (ext, fmt) in formats.items():
        stem = stems[f]
        jobs.append(OutputJob(f, stem, ext, fmt, outdir / f"{stem}{ext}", outdir / f"{stem}_mask.png"))
    return jobs


def _file_key(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def inputs_written_over(jobs, save_masks, extra_inputs=()):
    """[(output, input)] for every planned output that is (or links to) an input file."""
    inputs = {}
    for p in [j.source for j in jobs] + [j.mask_in for j in jobs if j.mask_in] + list(extra_inputs):
        inputs[pathlib.Path(p).resolve()] = p
        key = _file_key(p)
        if key:
            inputs[key] = p
    bad = []
    for j in jobs:
        for out in [j.image_out] + ([j.mask_out] if save_masks else []):
            hit = inputs.get(out.resolve()) or inputs.get(_file_key(out))
            if hit is not None:
                bad.append((out, hit))
    return bad


# -- user masks ------------------------------------------------------------------------------------
def mask_index(folder):
    """{stem: [mask files]} of a mask folder; ``<stem>_mask.<ext>`` is also filed under <stem>."""
    from gone.io import IMAGE_EXTENSIONS
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
    stem = pathlib.Path(image_path).stem
    me = pathlib.Path(image_path).resolve()
    found = [p for p in index.get(stem, []) if p.resolve() != me]   # masks beside their images
    exact = [p for p in found if p.stem == stem]
    found = exact or found
    if not found:
        raise ValueError(f"{image_path}: no mask {stem}.* or {stem}_mask.* in {folder}")
    if len(found) > 1:
        raise ValueError(f"{image_path}: several masks match: {', '.join(p.name for p in found)}")
    return found[0]


# -- one image -> its output files -------------------------------------------------------------------
class DiskFullError(OSError):
    """No space left while writing an output (the run stops; nothing half-written is left)."""


def outputs_needed(job, save_masks, overwrite):
    """Which of ("image", "mask") must be written: missing ones (all with ``overwrite``)."""
    need = []
    if overwrite or not job.image_out.exists():
        need.append("image")
    if save_masks and (overwrite or not job.mask_out.exists()):
        need.append("mask")
    return need


def write_job_outputs(job, loaded, result, which=("image", "mask")):
    """Write the outputs named in ``which`` for one image, atomically; returns the paths written.
    An image left untouched keeps the original bytes when its format is kept."""
    import numpy as np

    from gone.io import copy_file_atomic, write_image_atomic, write_mask_atomic
    written = []
    try:
        if "image" in which:
            if result.status != "inpainted" and job.source.suffix.lower() == job.ext and loaded.frames == 1:
                copy_file_atomic(job.source, job.image_out)   # untouched: keep the original bytes
            else:
                write_image_atomic(job.image_out, np.asarray(result.output), format=job.fmt)
            written.append(job.image_out)
        if "mask" in which:
            write_mask_atomic(job.mask_out, result.hole_mask)
            written.append(job.mask_out)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(e.errno, f"no space left on the device writing {job.image_out.parent}") from None
        raise
    return written


def write_outputs(src, loaded, result, outdir, args, stem=None):
    """Write one image's output files into ``outdir`` exactly as ``gone remove`` does (names,
    formats, atomic writes; existing outputs kept unless ``args.overwrite``); ``stem`` is the
    planned output stem (``plan_output_stems``), default the input's. Returns the paths written."""
    src = pathlib.Path(src)
    outdir = pathlib.Path(outdir)
    ext, fmt = output_ext_for(src, loaded)
    stem = stem or src.stem
    job = OutputJob(src, stem, ext, fmt, outdir / f"{stem}{ext}", outdir / f"{stem}_mask.png")
    save_masks = bool(getattr(args, "save_masks", False))
    return write_job_outputs(job, loaded, result, outputs_needed(job, save_masks, getattr(args, "overwrite", False)))


def remove_to_files(remover, job, save_masks=False, overwrite=False):
    """One input image -> its output files, as ``gone remove`` (load, remove, atomic writes).
    Returns (RemovalResult or None when nothing had to be written, paths written, note)."""
    import warnings

    from gone.io import load_image, read_mask
    from gone.pipeline import LargeCropWarning
    which = outputs_needed(job, save_masks, overwrite)
    if not which:
        return None, [], f"{job.image_out} exists, not replaced (use --overwrite)"
    loaded = load_image(job.source)
    holes = None if job.mask_in is None else [read_mask(job.mask_in, loaded.rgb.shape)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LargeCropWarning)  # reported through the message
        (result,) = remover.remove([loaded.rgb], hole_masks=holes)
    return result, write_job_outputs(job, loaded, result, which), loaded.note


def _describe_inpainter(remover):
    inp = getattr(remover, "inpainter", None)
    if inp is None:
        return "none"
    desc = getattr(remover, "inpainter_description", None) or getattr(inp, "description", None)
    return desc or type(inp).__name__


def cmd_remove(args):
    import warnings

    from gone.io import ImageReadError, clean_stale_temps, load_image, read_mask
    from gone.pipeline import LargeCropWarning

    try:
        _validate_remove_args(args)
    except ValueError as e:
        _err(f"error: {e}")
        return EXIT_USAGE
    files, input_errors = _expand_inputs(args.inputs)
    for msg in input_errors:
        _err(f"error: {msg}")
    if not files:
        _err("error: no input images")
        return EXIT_USAGE
    outdir = pathlib.Path(args.outdir)
    counts = {"inpainted": 0, "nothing_to_remove": 0, "skipped_large_crop": 0, "exists": 0,
              "failed": len(input_errors)}

    mask_for, mask_files = {}, []
    if args.masks:
        index = mask_index(args.masks)
        mask_files = [p for ps in index.values() for p in ps]
        problems = {}
        for f in files:
            try:
                mask_for[f] = find_mask(f, index, args.masks)
            except ValueError as e:
                problems[f] = str(e)
        # with the masks beside the images (--masks = an input folder), the masks are not inputs
        used = {m.resolve() for m in mask_for.values()}
        files = [f for f in files if f.resolve() not in used]
        for f in files:
            if f in problems:
                _err(f"error: {problems[f]}")
                counts["failed"] += 1
        files = [f for f in files if f in mask_for]

    # Plan every output name up front: unique names, never an input file.
    jobs = plan_outputs(files, outdir)
    renamed = [j for j in jobs if j.stem != j.source.stem]
    for j in jobs:
        j.mask_in = mask_for.get(j.source)
    clobber = inputs_written_over(jobs, args.save_masks, mask_files)
    if clobber:
        shown = "; ".join(f"{out} is the input {src}" for out, src in clobber[:3])
        more = f" (and {len(clobber) - 3} more)" if len(clobber) > 3 else ""
        _err(f"error: refusing to write over input files: {shown}{more}; choose another -o folder")
        return EXIT_USAGE
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _err(f"error: cannot create output folder {outdir}: {e}")
        return EXIT_USAGE
    for stale in clean_stale_temps(outdir):
        if not args.quiet:
            _err(f"removed {stale.name}, left by an interrupted run")
    for j in renamed:   # shown even with -q: the user looks for these files by name
        _err(f"{j.source}: output names clash; written as {j.image_out.name}")

    remover = None
    start = time.perf_counter()
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), desc="gone", unit="img", disable=args.quiet or None, file=sys.stderr)

    def note(msg):
        if not args.quiet:
            bar.write(f"gone: {msg}", file=sys.stderr)

    def fail(msg):
        bar.write(f"gone: error: {msg}", file=sys.stderr)
        counts["failed"] += 1

    def finish(item, result):
        job, loaded, which = item
        write_job_outputs(job, loaded, result, which)
        counts[result.status] += 1
        if result.status != "inpainted" or result.message.startswith("warning"):
            note(f"{job.source}: {result.message}")

    def run(items):
        """Process a batch; if the batch fails, retry file by file to isolate the bad one."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LargeCropWarning)  # reported through the message
                holes = None if args.masks is None else [it[3] for it in items]
                results = remover.remove([it[1].rgb for it in items], hole_masks=holes)
        except Exception as e:
            if len(items) > 1:
                for it in items:
                    run([it])
                return
            fail(f"{items[0][0].source}: {type(e).__name__}: {e}")
            bar.update(1)
            return
        for it, result in zip(items, results):
            try:
                finish(it[:3], result)
            except DiskFullError:
                raise
            except Exception as e:
                fail(f"{it[0].source}: cannot write output: {type(e).__name__}: {e}")
            bar.update(1)

    pending = []
    try:
        for job in jobs:
            which = outputs_needed(job, args.save_masks, args.overwrite)
            if not which:
                bar.write(f"gone: {job.source}: {job.image_out} exists, not replaced (use --overwrite)",
                          file=sys.stderr)
                counts["exists"] += 1
                bar.update(1)
                continue
            try:
                loaded = load_image(job.source)
                hole = None if job.mask_in is None else read_mask(job.mask_in, loaded.rgb.shape)
            except ImageReadError as e:
                fail(str(e))
                bar.update(1)
                continue
            if loaded.note:
                note(f"{job.source}: {loaded.note}")
            if remover is None:
                try:
                    remover = build_remover(args)
                except Exception as e:  # setup problem: one clear message, stop the batch
                    bar.close()
                    _err(f"error: {e}")
                    return EXIT_USAGE
                note(f"inpainter: {_describe_inpainter(remover)}")
            pending.append((job, loaded, which, hole))
            if len(pending) >= args.batch_size:
                run(pending)
                pending = []
        if pending:
            run(pending)
    except DiskFullError as e:
        bar.close()
        _err(f"error: {e.strerror}; stopped (no partial files left)")
        return EXIT_FAILED
    bar.close()
    elapsed = time.perf_counter() - start
    done = counts["inpainted"] + counts["nothing_to_remove"] + counts["skipped_large_crop"]
    rate = f", {done / elapsed:.2f} images/s" if done and elapsed > 0 else ""
    used = f"; inpainter: {_describe_inpainter(remover)}" if remover is not None else ""
    print(f"gone: {counts['inpainted']} inpainted, {counts['nothing_to_remove']} nothing to remove, "
          f"{counts['skipped_large_crop']} skipped (large crop), {counts['exists']} existing, "
          f"{counts['failed']} failed in {elapsed:.1f} s{rate}; outputs in {outdir}{used}", flush=True)
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def cmd_inpaint(args):
    """``gone inpaint``: fill the user's own masks (one image or a folder; masks by file stem)."""
    from gone.io import (IMAGE_EXTENSIONS, ImageReadError, clean_stale_temps, load_image, read_mask,
                         write_image_atomic)
    from gone.pipeline import PeopleRemover
    if args.working_size < 8 or args.working_size % 8:
        _err("error: --working-size must be a positive multiple of 8")
        return EXIT_USAGE
    image, mask, output = pathlib.Path(args.image), pathlib.Path(args.mask), pathlib.Path(args.output)
    if not image.exists():
        _err(f"error: {image}: no such file or folder")
        return EXIT_USAGE
    if not mask.exists():
        _err(f"error: {mask}: no such file or folder")
        return EXIT_USAGE
    pairs, problems = [], []
    if image.is_dir():
        if not mask.is_dir():
            _err(f"error: --image {image} is a folder, so --mask must be a folder too")
            return EXIT_USAGE
        files = sorted(p for p in image.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            _err(f"error: {image}: folder has no image files")
            return EXIT_USAGE
        index = mask_index(mask)
        found = {}
        for f in files:
            try:
                found[f] = find_mask(f, index, mask)
            except ValueError as e:
                found[f] = e
        used = {m.resolve() for m in found.values() if isinstance(m, pathlib.Path)}
        files = [f for f in files if f.resolve() not in used]   # masks kept beside their images
        problems = [str(found[f]) for f in files if not isinstance(found[f], pathlib.Path)]
        jobs = plan_outputs([f for f in files if isinstance(found[f], pathlib.Path)], output)
        pairs = [(j, found[j.source]) for j in jobs]
        inputs = list(files) + [p for ps in index.values() for p in ps]
    else:
        if mask.is_dir():
            _err(f"error: --image {image} is a file, so --mask must be a file too")
            return EXIT_USAGE
        if output.is_dir():
            _err(f"error: --output {output} is a folder; give an output file name for one image")
            return EXIT_USAGE
        ext, fmt = output_ext_for(output)
        if output.suffix.lower() != ext:
            _err(f"error: --output {output}: cannot write that format; use e.g. {output.with_suffix('.png')}")
            return EXIT_USAGE
        pairs.append((OutputJob(image, output.stem, ext, fmt, output, output.with_name(output.stem + "_mask.png")),
                      mask))
        inputs = [image, mask]
    clobber = inputs_written_over([j for j, _ in pairs], False, inputs)
    if clobber:
        out, src = clobber[0]
        _err(f"error: refusing to write over the input file {src} ({out}); choose another --output")
        return EXIT_USAGE
    for msg in problems:
        _err(f"error: {msg}")
    output_dir = output if image.is_dir() else output.parent
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _err(f"error: cannot create output folder {output_dir}: {e}")
        return EXIT_USAGE
    clean_stale_temps(output_dir)
    failed, done, existing = len(problems), 0, 0
    try:
        inpainter = build_inpainter(args.inpainter, args.checkpoint_dir)
    except Exception as e:
        _err(f"error: {e}")
        return EXIT_USAGE
    remover = PeopleRemover(None, inpainter, working_size=args.working_size)
    if not args.quiet:
        _err(f"inpainter: {_describe_inpainter(remover)}")
    for job, mask_path in pairs:
        if job.image_out.exists() and not args.overwrite:
            _err(f"{job.source}: {job.image_out} exists, not replaced (use --overwrite)")
            existing += 1
            continue
        try:
            loaded = load_image(job.source)
            hole = read_mask(mask_path, loaded.rgb.shape)
            if loaded.note and not args.quiet:
                _err(f"{job.source}: {loaded.note}")
            (result,) = remover.remove([loaded.rgb], hole_masks=[hole])
            write_image_atomic(job.image_out, result.output, format=job.fmt)
            done += 1
        except (ImageReadError, ValueError) as e:
            _err(f"error: {e}")
            failed += 1
        except OSError as e:
            _err(f"error: {job.source}: cannot write {job.image_out}: {e.strerror or e}")
            failed += 1
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                _err("error: no space left on the device; stopped (no partial files left)")
                break
    print(f"gone: {done} inpainted, {existing} existing, {failed} failed; inpainter: "
          f"{_describe_inpainter(remover)}", flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_weights(args):
    from gone import weights as W
    print(W.explain(), end="")
    if args.download is None:
        return EXIT_OK
    names = args.download or [n for n, s in W.REGISTRY.items() if s.url]
    status = EXIT_OK
    for name in names:
        if name not in W.REGISTRY:
            _err(f"error: unknown weights {name!r}; known: {', '.join(W.REGISTRY)}")
            return EXIT_USAGE
        if W.find_weight_file(name):
            print(f"{name}: already at {W.find_weight_file(name)}")
            continue
        if not W.REGISTRY[name].url:
            print(f"{name}: no direct download. {W.manual_instructions(name)}")
            status = EXIT_FAILED
            continue
        try:
            path = W.download(name, timeout=args.timeout)
            print(f"{name}: downloaded to {path} (sha256 {W.sha256_of(path)})")
        except W.WeightsError as e:
            _err(f"error: {e}")
            status = EXIT_FAILED
    return status


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    received = []
    with _sigterm_as_interrupt(received):
        try:
            if args.command == "remove":
                return cmd_remove(args)
            if args.command == "inpaint":
                return cmd_inpaint(args)
            if args.command == "label":
                from gone import label_app
                return label_app.main(args)
            return cmd_weights(args)
        except KeyboardInterrupt:
            _err("interrupted (SIGTERM)" if received else "interrupted")
            return 128 + signal.SIGTERM if received else 130


class _sigterm_as_interrupt:
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does), so temp files are removed and the run
    stops with one line; the previous handler is restored afterwards (main thread only)."""

    def __init__(self, received):
        self.received = received
        self.previous = None

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                self.received.append(signum)
                raise KeyboardInterrupt
            self.previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


if __name__ == "__main__":
    sys.exit(main())
