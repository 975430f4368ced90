"""Command line: ``gone remove INPUT... -o OUTDIR`` and ``gone weights``.

Exit codes: 0 all files ok, 1 some files failed, 2 usage or setup error (bad arguments, no
inputs, models cannot be loaded). Keras/TensorFlow are imported only when models are built.
"""
from __future__ import annotations

import argparse
import glob
import os
import pathlib
import shutil
import sys
import time

# TensorFlow's C++ start-up chatter hides the progress bar; users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
    from gone.masks import STRATEGIES
    p = argparse.ArgumentParser(prog="gone", description="Remove people (or other objects) from photos: "
                                "Mask R-CNN finds them, DeepFill v1 fills the hole.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("remove", help="remove people from image files, folders or globs",
                       description="Remove people from images. Outputs are written to OUTDIR as "
                       "<stem>.<ext> (16-bit and unwritable formats become PNG).")
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (their images) or glob patterns")
    r.add_argument("-o", "--outdir", required=True, help="output folder (created if needed)")
    r.add_argument("--strategy", choices=STRATEGIES, default="dilated", help="hole shape (default: dilated)")
    r.add_argument("--dilation", default=None,
                   help="dilated strategy radius: pixels ('15', '15px') or fraction of the instance size "
                        "('0.05', '5%%'); default 0.05")
    r.add_argument("--classes", default="person",
                   help="comma-separated COCO class names or ids to remove (default: person; 'all' = every class)")
    r.add_argument("--min-score", type=float, default=0.7, help="minimum detection score (default 0.7)")
    r.add_argument("--mrcnn-weights", default=None, help="Mask R-CNN .h5 (default: the cached mask_rcnn_coco.h5)")
    r.add_argument("--inpaint-checkpoint", default=None,
                   help="DeepFill v1 checkpoint folder or prefix (default: the cached release_places2_256)")
    r.add_argument("--large-crop", choices=("process", "skip", "warn"), default="warn",
                   help="what to do when the hole covers > 50%% of an image (default: warn)")
    r.add_argument("--working-size", type=int, default=512, help="largest region side fed to the inpainter (default 512)")
    r.add_argument("--batch-size", type=int, default=1, help="images per detector / regions per inpainter call")
    r.add_argument("--save-masks", action="store_true", help="also write <stem>_mask.png (255 = hole)")
    r.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file notes")
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


def build_remover(args):
    """The real models (lazy imports). Tests replace this function with fakes."""
    from gone.models import load_detector, load_inpainter
    from gone.pipeline import PeopleRemover
    from gone.weights import find_weight_file
    weights = args.mrcnn_weights or find_weight_file("mask_rcnn_coco")
    ckpt = args.inpaint_checkpoint or find_weight_file("deepfill_v1_places2")
    detector = load_detector(weights, images_per_gpu=max(1, args.batch_size))
    inpainter = load_inpainter(ckpt)
    return PeopleRemover(detector, inpainter, strategy=args.strategy, dilation=args.dilation,
                         classes=_parse_classes(args.classes), min_score=args.min_score,
                         large_crop=args.large_crop, working_size=args.working_size,
                         batch_size=args.batch_size)


def _validate_remove_args(args):
    from gone.masks import class_ids_for, parse_dilation
    if args.dilation is not None:
        parse_dilation(args.dilation)
    class_ids_for(_parse_classes(args.classes))
    if not 0.0 <= args.min_score <= 1.0:
        raise ValueError(f"--min-score must be in [0, 1], got {args.min_score}")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    if args.working_size < 8 or args.working_size % 8:
        raise ValueError("--working-size must be a positive multiple of 8")


def _copy_atomic(src, dest):
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def cmd_remove(args):
    import warnings

    import numpy as np

    from gone.io import ImageReadError, load_image, output_format_for, write_image_atomic, write_mask_atomic
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
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _err(f"error: cannot create output folder {outdir}: {e}")
        return EXIT_USAGE

    # Plan outputs; refuse name clashes and existing files (unless --overwrite) up front.
    counts = {"inpainted": 0, "nothing_to_remove": 0, "skipped_large_crop": 0, "exists": 0, "failed": len(input_errors)}
    plan, taken = [], {}
    for f in files:
        ext = f.suffix.lower()
        out = outdir / f"{f.stem}{ext}"
        if out.resolve() in taken:
            _err(f"error: {f}: output name {out.name} clashes with {taken[out.resolve()]}; skipped")
            counts["failed"] += 1
            continue
        taken[out.resolve()] = f
        plan.append(f)

    remover = None
    start = time.perf_counter()
    from tqdm import tqdm
    bar = tqdm(total=len(plan), desc="gone", unit="img", disable=args.quiet or None, file=sys.stderr)

    def finish(job, result):
        f, loaded, out, mask_out, ext, fmt = job
        if result.status == "inpainted":
            write_image_atomic(out, result.output, format=fmt)
        elif f.suffix.lower() == ext:
            _copy_atomic(f, out)   # untouched: keep the original bytes
        else:
            write_image_atomic(out, np.asarray(result.output), format=fmt)
        if args.save_masks:
            write_mask_atomic(mask_out, result.hole_mask)
        counts[result.status] += 1
        if not args.quiet and (result.status != "inpainted" or result.message.startswith("warning")):
            bar.write(f"gone: {f}: {result.message}", file=sys.stderr)

    def run(jobs):
        """Process a batch; if the batch fails, retry file by file to isolate the bad one."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LargeCropWarning)  # reported through the message
                results = remover.remove([j[1].rgb for j in jobs])
        except Exception as e:
            if len(jobs) > 1:
                for j in jobs:
                    run([j])
                return
            bar.write(f"gone: error: {jobs[0][0]}: {type(e).__name__}: {e}", file=sys.stderr)
            counts["failed"] += 1
            bar.update(1)
            return
        for job, result in zip(jobs, results):
            try:
                finish(job, result)
            except Exception as e:
                bar.write(f"gone: error: {job[0]}: cannot write output: {type(e).__name__}: {e}",
                          file=sys.stderr)
                counts["failed"] += 1
            bar.update(1)

    pending = []
    for f in plan:
        try:
            loaded = load_image(f)
        except ImageReadError as e:
            bar.write(f"gone: error: {e}", file=sys.stderr)
            counts["failed"] += 1
            bar.update(1)
            continue
        ext, fmt = output_format_for(f, loaded)
        out = outdir / f"{f.stem}{ext}"
        if out.exists() and not args.overwrite:
            bar.write(f"gone: {f}: {out} exists, not replaced (use --overwrite)", file=sys.stderr)
            counts["exists"] += 1
            bar.update(1)
            continue
        if remover is None:
            try:
                remover = build_remover(args)
            except Exception as e:  # setup problem: one clear message, stop the batch
                bar.close()
                _err(f"error: {e}")
                return EXIT_USAGE
        pending.append((f, loaded, out, outdir / f"{f.stem}_mask.png", ext, fmt))
        if len(pending) >= args.batch_size:
            run(pending)
            pending = []
    if pending:
        run(pending)
    bar.close()
    elapsed = time.perf_counter() - start
    done = counts["inpainted"] + counts["nothing_to_remove"] + counts["skipped_large_crop"]
    rate = f", {done / elapsed:.2f} images/s" if done and elapsed > 0 else ""
    print(f"gone: {counts['inpainted']} inpainted, {counts['nothing_to_remove']} nothing to remove, "
          f"{counts['skipped_large_crop']} skipped (large crop), {counts['exists']} existing, "
          f"{counts['failed']} failed in {elapsed:.1f} s{rate}; outputs in {outdir}", flush=True)
    return EXIT_FAILED if counts["failed"] else EXIT_OK


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
    try:
        if args.command == "remove":
            return cmd_remove(args)
        if args.command == "label":
            from gone import label_app
            return label_app.main(args)
        return cmd_weights(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
