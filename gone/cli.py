"""Command line: ``gone remove INPUT... -o OUTDIR``, ``gone inpaint --image --mask --output``,
``gone weights`` (and ``gone label``, gone/labeling/app.py).

Exit codes: 0 all files ok, 1 some files failed (or the disk filled up), 2 usage or setup error
(bad arguments, no inputs, an output that would replace an input, models cannot be loaded),
130 Ctrl-C, 143 SIGTERM. Keras/TensorFlow are imported only when models are built.

A thin front end: the options, their validation and the models are gone/options.py; output
planning, the writer and the batch runner are gone/outputs.py (``python -m gone.beam`` uses both).
"""
from __future__ import annotations

import argparse
import glob
import os
import pathlib
import signal
import sys
import time

# TensorFlow's environment defaults are set by importing gone (gonefiles/quiet.py), before
# TensorFlow loads.
from gone import options  # noqa: E402 (no Keras)
from gone.options import add_inpaint_options, add_remove_options, build_remover  # noqa: E402,F401
# output planning, names, the never-an-input check, mask matching, the writer, the batch runner
from gone.outputs import DiskFullError, OutputJob, output_ext_for, outputs_needed, plan_outputs  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def err(msg):
    """One line on stderr, prefixed ``gone:`` (every front end's messages)."""
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
    r.add_argument("--keep", choices=("none", "subject"), default="none",
                   help="subject = keep the photo's subject(s) and the people touching them, remove "
                        "the rest (gone/subject.py; not with --masks) (default: none, remove every "
                        "selected instance)")
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
    w.add_argument("--timeout", type=options.float_in(0.0, 3600.0, low_open=True), default=30.0,
                   help="network timeout in seconds")
    from gone.labeling import app as label_app
    label_app.add_arguments(sub.add_parser(
        "label", help="blind labeling web app for experiment outputs (docs/labeling.md)",
        description="Serve the blinded results of experiment outputs to raters; --export writes "
        "labels/<rater>.csv for experiments/make_table.py."))
    from gone.app.server import add_arguments as add_app_arguments
    add_app_arguments(sub.add_parser(
        "app", help="remove people from photos in the browser (docs/app.md)",
        description="Serve a page that detects the people in your photos, keeps the subject, "
        "removes the others and lets you download the results."))
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


def _match_masks(files, folder, counts):
    """gone.outputs.match_masks, each image without exactly one mask reported and counted as failed."""
    from gone.outputs import match_masks
    files, mask_for, mask_files, problems = match_masks(files, folder)
    for _, problem in problems:
        err(f"error: {problem}")
    counts["failed"] += len(problems)
    return files, mask_for, mask_files


def _prepare_outdir(plan, outdir, quiet, named_output=False):
    """Refuse outputs that are inputs (exit 2), create the folder, remove stale temp files and
    report renamed outputs (none when the user named the output file: ``named_output``); None
    when all is well, else the exit code."""
    from gone.io import clean_stale_temps
    if plan.clobber:
        shown = "; ".join(f"{out} is the input {src}" for out, src in plan.clobber[:3])
        more = f" (and {len(plan.clobber) - 3} more)" if len(plan.clobber) > 3 else ""
        err(f"error: refusing to write over input files: {shown}{more}; choose another output folder")
        return EXIT_USAGE
    try:
        pathlib.Path(outdir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        err(f"error: cannot create output folder {outdir}: {e}")
        return EXIT_USAGE
    for stale in clean_stale_temps(outdir):
        if not quiet:
            err(f"removed {stale.name}, left by an interrupted run")
    if plan.manifest.problem:
        err(f"warning: {plan.manifest.problem}")
    for j in ([] if named_output else plan.jobs):   # shown even with -q: the user looks for these files by name
        if j.clash:
            err(f"{j.source}: {j.clash}")
        elif j.stem != pathlib.Path(j.source).stem:
            err(f"{j.source}: output names clash; written as {pathlib.Path(j.image_out).name}")
    return None


class _Run:
    """The loop of ``gone remove`` / ``gone inpaint``: each job loaded, batched, run through
    gone.outputs.run_batch (remove -> retry one at a time -> write), counted and reported."""

    def __init__(self, plan, make_remover, batch_size, save_masks, overwrite, quiet, what="gone", keep="none"):
        from tqdm import tqdm
        self.plan, self.make_remover, self.keep = plan, make_remover, keep
        self.batch_size, self.save_masks, self.overwrite, self.quiet = batch_size, save_masks, overwrite, quiet
        self.remover = None
        self.counts = {"inpainted": 0, "nothing_to_remove": 0, "skipped_large_crop": 0,
                       "exists": 0, "failed": 0}
        self.bar = tqdm(total=len(plan.jobs), desc=what, unit="img", disable=quiet or None, file=sys.stderr)
        self.committed = False
        self.saved_at = 0.0

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
        for o in run_batch(self.remover, items, keep=self.keep):
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
        self.plan.manifest.record(written=written)
        if time.monotonic() - self.saved_at > 5.0:   # what was written: at most every 5 s, and at the end
            self.plan.manifest.save()
            self.saved_at = time.monotonic()

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
                    err(f"error: {e}")
                    return EXIT_USAGE
                self.note(f"inpainter: {self.remover.inpainter_description}")
            pending.append(item)
            if len(pending) >= self.batch_size:
                self._flush(pending)
                pending = []
        if pending:
            self._flush(pending)
        self.bar.close()
        if self.committed:
            self.plan.manifest.save()
        return None


def cmd_remove(args):
    try:
        options.validate_remove_args(args)
    except ValueError as e:
        err(f"error: {e}")
        return EXIT_USAGE
    files, input_errors = _expand_inputs(args.inputs)
    for msg in input_errors:
        err(f"error: {msg}")
    if not files:
        err("error: no input images")
        return EXIT_USAGE
    try:   # the weights, before anything is created
        setup = options.check_setup(args)
    except options.SetupError as e:
        err(f"error: {e}")
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
    run = _Run(plan, lambda: options.build_remover(args, setup), args.batch_size, args.save_masks, args.overwrite,
               args.quiet, keep=args.keep)
    try:
        setup = run.run()
    except DiskFullError as e:
        run.bar.close()
        err(f"error: {e.strerror}; stopped (no partial files left)")
        return EXIT_FAILED
    if setup is not None:
        return setup
    c = run.counts
    c["failed"] += counts["failed"]
    elapsed = time.perf_counter() - start
    done = c["inpainted"] + c["nothing_to_remove"] + c["skipped_large_crop"]
    rate = f", {done / elapsed:.2f} images/s" if done and elapsed > 0 else ""
    used = f"; inpainter: {run.remover.inpainter_description}" if run.remover is not None else ""
    print(f"gone: {c['inpainted']} inpainted, {c['nothing_to_remove']} nothing to remove, "
          f"{c['skipped_large_crop']} skipped (large crop), {c['exists']} existing, "
          f"{c['failed']} failed in {elapsed:.1f} s{rate}; outputs in {outdir}{used}", flush=True)
    return EXIT_FAILED if c["failed"] else EXIT_OK


def _fits(path, working_size):
    """True when the image's longer side is at most ``working_size`` (header only)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return max(im.size) <= working_size
    except Exception:
        return False   # unreadable: the region path reports it


def cmd_inpaint(args):
    """``gone inpaint``: fill the user's own masks (one image or a folder; masks by file stem)."""
    from gone.io import IMAGE_EXTENSIONS
    from gone.pipeline import PeopleRemover
    image, mask, output = pathlib.Path(args.image), pathlib.Path(args.mask), pathlib.Path(args.output)
    for given in (image, mask):
        if not given.exists():
            err(f"error: {given}: no such file or folder")
            return EXIT_USAGE
    counts = {"failed": 0}
    if image.is_dir():
        if not mask.is_dir():
            err(f"error: --image {image} is a folder, so --mask must be a folder too")
            return EXIT_USAGE
        files = sorted(p for p in image.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            err(f"error: {image}: folder has no image files")
            return EXIT_USAGE
        try:
            options.check_output_folder(output, "--output")
        except ValueError as e:
            err(f"error: {e}")
            return EXIT_USAGE
        files, mask_for, mask_files = _match_masks(files, mask, counts)
        plan = plan_outputs(files, output, extra_inputs=mask_files)
        for j in plan.jobs:
            j.mask_in = mask_for[j.source]
        outdir = output
    else:
        if mask.is_dir():
            err(f"error: --image {image} is a file, so --mask must be a file too")
            return EXIT_USAGE
        if output.is_dir():
            err(f"error: --output {output} is a folder; give an output file name for one image")
            return EXIT_USAGE
        ext, fmt = output_ext_for(output)
        if output.suffix.lower() != ext:
            err(f"error: --output {output}: cannot write that format; use e.g. {output.with_suffix('.png')}")
            return EXIT_USAGE
        # the user named this output file: it is the one planned (no manifest renaming)
        from gone.outputs import Manifest, OutputPlan, refuse_inputs, LocalFolder
        outdir = output.parent
        job = OutputJob(image, output.stem, ext, fmt, output, output.with_name(output.stem + "_mask.png"), mask_in=mask)
        plan = OutputPlan([job], Manifest(LocalFolder(outdir)), [image, mask])
        plan.clobber = refuse_inputs([output], [image, mask])
    try:   # the checkpoint, before anything is created
        setup = options.check_setup(args, checkpoint=args.checkpoint_dir)
    except options.SetupError as e:
        err(f"error: {e}")
        return EXIT_USAGE
    refused = _prepare_outdir(plan, outdir, args.quiet, named_output=not image.is_dir())
    if refused is not None:
        return refused
    try:
        inpainter = options.build_inpainter(setup=setup)
    except Exception as e:
        err(f"error: {e}")
        return EXIT_USAGE
    remover = PeopleRemover(None, inpainter, working_size=args.working_size)
    if not image.is_dir() and callable(getattr(inpainter, "fill_like_test_py", None)) and _fits(image, args.working_size or options.WORKING_SIZE):
        from gone.pipeline import WholeImageRemover   # Yu's test.py form: test.py's output
        remover = WholeImageRemover(inpainter)
    if not args.quiet:
        err(f"inpainter: {remover.inpainter_description}")
    run = _Run(plan, lambda: remover, 1, False, args.overwrite, args.quiet, what="inpaint")
    try:
        run.run()
    except DiskFullError as e:
        run.bar.close()
        err(f"error: {e.strerror}; stopped (no partial files left)")
        return EXIT_FAILED
    c = run.counts
    c["failed"] += counts["failed"]
    print(f"gone: {c['inpainted']} inpainted, {c['nothing_to_remove']} unchanged (empty hole), "
          f"{c['exists']} existing, {c['failed']} failed; inpainter: {remover.inpainter_description}", flush=True)
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
            err(f"error: unknown weights {name!r}; known: {', '.join(W.REGISTRY)}")
            return EXIT_USAGE
        if W.find_weight_file(name, verify=True):
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
            err(f"error: {e}")
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
                from gone.labeling import app as label_app
                return label_app.main(args)
            if args.command == "app":
                from gone.app.server import main as app_main
                return app_main(args)
            return cmd_weights(args)
        except KeyboardInterrupt:
            err("interrupted (SIGTERM)" if received else "interrupted")
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
