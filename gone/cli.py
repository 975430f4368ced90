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

# TensorFlow's C++ start-up chatter hides the progress bar, and mrcnn's reference numerics are
# those of TF's Eigen kernels (oneDNN off; mrcnn/__init__.py); both must be set before TensorFlow
# loads (importing gone does it, gone/quiet.py), and users can still override them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from gone.models import (DEFAULT_MIN_SCORE, DETECTOR_RESIZE_MODES, DETECTOR_SIZE,  # noqa: E402 (no Keras)
                         FAST_DETECTOR_SIZE)

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
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                        help="minimum detection score, the detector's threshold (Matterport's "
                             "DETECTION_MIN_CONFIDENCE)")
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
    if need_detector:   # the score threshold is set once, on the detector's config
        detector = load_detector(weights, images_per_gpu=max(1, args.batch_size), allow_partial=allow_partial,
                                 image_max_dim=args.detector_size, resize_mode=args.detector_resize,
                                 detection_min_confidence=args.min_score, checked=True)
    return PeopleRemover(detector, inpainter, strategy=args.strategy, dilation=args.dilation,
                         classes=_parse_classes(args.classes),
                         large_crop=args.large_crop, working_size=args.working_size,
                         batch_size=args.batch_size)


# Output planning, names, the never-an-input check, mask matching, the writer and the batch
# runner: gone/outputs.py (shared with gone.beam).
from gone.outputs import (DiskFullError, OutputJob, find_mask, inputs_written_over, mask_index,  # noqa: E402,F401
                          output_ext_for, outputs_needed, plan_output_stems, plan_outputs, write_job_outputs)


def _describe_inpainter(remover):
    inp = getattr(remover, "inpainter", None)
    if inp is None:
        return "none"
    desc = getattr(remover, "inpainter_description", None) or getattr(inp, "description", None)
    return desc or type(inp).__name__


def _match_masks(files, folder, counts):
    """(files with a mask, {file: mask}, every mask file): ``--masks``/``--mask`` folder matching;
    an image without exactly one mask is reported and counted as failed."""
    index = mask_index(folder)
    mask_files = [p for ps in index.values() for p in ps]
    found = {}
    for f in files:
        try:
            found[f] = find_mask(f, index, folder)
        except ValueError as e:
            found[f] = e
    # with the masks beside the images (the mask folder = an input folder), masks are not inputs
    used = {m.resolve() for m in found.values() if isinstance(m, pathlib.Path)}
    files = [f for f in files if f.resolve() not in used]
    for f in files:
        if not isinstance(found[f], pathlib.Path):
            _err(f"error: {found[f]}")
            counts["failed"] += 1
    files = [f for f in files if isinstance(found[f], pathlib.Path)]
    return files, {f: found[f] for f in files}, mask_files


def _prepare_outdir(plan, outdir, quiet):
    """Refuse outputs that are inputs (exit 2), create the folder, remove stale temp files and
    report renamed outputs; None when all is well, else the exit code."""
    from gone.io import clean_stale_temps
    if plan.clobber:
        shown = "; ".join(f"{out} is the input {src}" for out, src in plan.clobber[:3])
        more = f" (and {len(plan.clobber) - 3} more)" if len(plan.clobber) > 3 else ""
        _err(f"error: refusing to write over input files: {shown}{more}; choose another output folder")
        return EXIT_USAGE
    try:
        pathlib.Path(outdir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _err(f"error: cannot create output folder {outdir}: {e}")
        return EXIT_USAGE
    for stale in clean_stale_temps(outdir):
        if not quiet:
            _err(f"removed {stale.name}, left by an interrupted run")
    if plan.manifest.problem:
        _err(f"warning: {plan.manifest.problem}")
    for j in plan.jobs:   # shown even with -q: the user looks for these files by name
        if j.clash:
            _err(f"{j.source}: {j.clash}")
        elif j.stem != pathlib.Path(j.source).stem:
            _err(f"{j.source}: output names clash; written as {pathlib.Path(j.image_out).name}")
    return None


class _Run:
    """The loop of ``gone remove`` / ``gone inpaint``: each job loaded, batched, run through
    gone.outputs.run_batch (remove -> retry one at a time -> write), counted and reported."""

    def __init__(self, plan, make_remover, batch_size, save_masks, overwrite, quiet, what="gone"):
        from tqdm import tqdm
        self.plan, self.make_remover = plan, make_remover
        self.batch_size, self.save_masks, self.overwrite, self.quiet = batch_size, save_masks, overwrite, quiet
        self.remover = None
        self.counts = {"inpainted": 0, "unchanged": 0, "nothing_to_remove": 0, "skipped_large_crop": 0,
                       "exists": 0, "failed": 0}
        self.bar = tqdm(total=len(plan.jobs), desc=what, unit="img", disable=quiet or None, file=sys.stderr)
        self.committed = False

    def note(self, msg):
        if not self.quiet:
            self.bar.write(f"gone: {msg}", file=sys.stderr)

    def fail(self, msg):
        self.bar.write(f"gone: error: {msg}", file=sys.stderr)
        self.counts["failed"] += 1

    def _flush(self, items):
        from gone.outputs import run_batch
        if not self.committed:   # the planned names are recorded before the first output
            self.plan.commit()
            self.committed = True
        written = []
        for o in run_batch(self.remover, items):
            source = o.item.job.source
            if o.error:
                self.fail(f"{source}: {o.error}")
            else:
                written += o.written
                status = o.result.status
                self.counts[status] += 1
                if status != "inpainted" or o.result.message.startswith("warning"):
                    self.note(f"{source}: {o.result.message}")
            self.bar.update(1)
        self.plan.commit(written)

    def run(self):
        """Returns None, or EXIT_USAGE when the models cannot be built."""
        from gone.io import ImageReadError
        from gone.outputs import load_item
        pending = []
        for job in self.plan.jobs:
            which = outputs_needed(job, self.save_masks, self.overwrite)
            if not which:
                self.bar.write(f"gone: {job.source}: {job.image_out} exists, not replaced (use --overwrite)",
                               file=sys.stderr)
                self.counts["exists"] += 1
                self.bar.update(1)
                continue
            try:
                item = load_item(job, which)
            except (ImageReadError, ValueError) as e:
                self.fail(str(e))
                self.bar.update(1)
                continue
            if item.loaded.note:
                self.note(f"{job.source}: {item.loaded.note}")
            if self.remover is None:
                try:
                    self.remover = self.make_remover()
                except Exception as e:  # setup problem: one clear message, stop the batch
                    self.bar.close()
                    _err(f"error: {e}")
                    return EXIT_USAGE
                self.note(f"inpainter: {_describe_inpainter(self.remover)}")
            pending.append(item)
            if len(pending) >= self.batch_size:
                self._flush(pending)
                pending = []
        if pending:
            self._flush(pending)
        self.bar.close()
        return None


def cmd_remove(args):
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
    counts = {"failed": len(input_errors)}
    mask_for, mask_files = {}, []
    if args.masks:
        files, mask_for, mask_files = _match_masks(files, args.masks, counts)
    plan = plan_outputs(files, outdir, save_masks=args.save_masks, extra_inputs=mask_files)
    for j in plan.jobs:
        j.mask_in = mask_for.get(j.source)
    refused = _prepare_outdir(plan, outdir, args.quiet)
    if refused is not None:
        return refused
    start = time.perf_counter()
    run = _Run(plan, lambda: build_remover(args), args.batch_size, args.save_masks, args.overwrite, args.quiet)
    try:
        setup = run.run()
    except DiskFullError as e:
        run.bar.close()
        _err(f"error: {e.strerror}; stopped (no partial files left)")
        return EXIT_FAILED
    if setup is not None:
        return setup
    c = run.counts
    c["failed"] += counts["failed"]
    elapsed = time.perf_counter() - start
    done = c["inpainted"] + c["nothing_to_remove"] + c["skipped_large_crop"]
    rate = f", {done / elapsed:.2f} images/s" if done and elapsed > 0 else ""
    used = f"; inpainter: {_describe_inpainter(run.remover)}" if run.remover is not None else ""
    print(f"gone: {c['inpainted']} inpainted, {c['nothing_to_remove']} nothing to remove, "
          f"{c['skipped_large_crop']} skipped (large crop), {c['exists']} existing, "
          f"{c['failed']} failed in {elapsed:.1f} s{rate}; outputs in {outdir}{used}", flush=True)
    return EXIT_FAILED if c["failed"] else EXIT_OK


def cmd_inpaint(args):
    """``gone inpaint``: fill the user's own masks (one image or a folder; masks by file stem)."""
    from gone.io import IMAGE_EXTENSIONS
    from gone.pipeline import PeopleRemover
    if args.working_size < 8 or args.working_size % 8:
        _err("error: --working-size must be a positive multiple of 8")
        return EXIT_USAGE
    image, mask, output = pathlib.Path(args.image), pathlib.Path(args.mask), pathlib.Path(args.output)
    for given in (image, mask):
        if not given.exists():
            _err(f"error: {given}: no such file or folder")
            return EXIT_USAGE
    counts = {"failed": 0}
    if image.is_dir():
        if not mask.is_dir():
            _err(f"error: --image {image} is a folder, so --mask must be a folder too")
            return EXIT_USAGE
        files = sorted(p for p in image.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            _err(f"error: {image}: folder has no image files")
            return EXIT_USAGE
        files, mask_for, mask_files = _match_masks(files, mask, counts)
        plan = plan_outputs(files, output, extra_inputs=mask_files)
        for j in plan.jobs:
            j.mask_in = mask_for[j.source]
        outdir = output
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
        # the user named this output file: it is the one planned (no manifest renaming)
        from gone.outputs import Manifest, OutputPlan, refuse_inputs, LocalFolder
        outdir = output.parent
        job = OutputJob(image, output.stem, ext, fmt, output, output.with_name(output.stem + "_mask.png"), mask_in=mask)
        plan = OutputPlan([job], Manifest(LocalFolder(outdir)), [image, mask])
        plan.clobber = refuse_inputs([output], [image, mask])
    refused = _prepare_outdir(plan, outdir, args.quiet)
    if refused is not None:
        return refused
    try:
        inpainter = build_inpainter(args.inpainter, args.checkpoint_dir)
    except Exception as e:
        _err(f"error: {e}")
        return EXIT_USAGE
    remover = PeopleRemover(None, inpainter, working_size=args.working_size)
    if not args.quiet:
        _err(f"inpainter: {_describe_inpainter(remover)}")
    run = _Run(plan, lambda: remover, 1, False, args.overwrite, args.quiet, what="inpaint")
    try:
        run.run()
    except DiskFullError as e:
        run.bar.close()
        _err(f"error: {e.strerror}; stopped (no partial files left)")
        return EXIT_FAILED
    c = run.counts
    c["failed"] += counts["failed"]
    print(f"gone: {c['inpainted']} inpainted, {c['exists']} existing, {c['failed']} failed; inpainter: "
          f"{_describe_inpainter(remover)}", flush=True)
    return EXIT_FAILED if c["failed"] else EXIT_OK


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
