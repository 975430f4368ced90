"""Batch people removal on Apache Beam: ``python -m gone.beam --input PATTERN --output DIR``.

Every ``gone remove`` option is accepted (``--strategy``, ``--classes``, ``--batch-size``,
``--save-masks``, ``--overwrite``...); the remaining arguments are Beam pipeline options
(``--runner DirectRunner|DataflowRunner|FlinkRunner|SparkRunner``, ``--direct_num_workers``, ...).
The default runner is the DirectRunner, so it works on one machine with no cluster.

PATTERN is a Beam filesystem glob (local, ``gs://``, ``s3://`` with the matching Beam extra) or a
local folder (its image files, as ``gone remove FOLDER``). The pipeline:

1. match the files and plan every output name in one worker with ``gone remove``'s planner
   (gone/outputs.py): two inputs that map to the same output name get unique names like the CLI's
   (a.jpg + a.png -> a_jpg.jpg, a_png.png), an existing file the program did not write is kept
   (the input gets the next free name), a rerun keeps the names recorded in the output folder's
   ``.gone-manifest.json``, and an output that would replace an input sends that input to the
   dead-letter file;
2. read and decode each file; an undecodable one goes to the dead-letter file; one whose output
   already exists is skipped (unless ``--overwrite``), so a rerun only does what is left;
3. batch the images (``--batch-size``) and run them through ``gone.outputs.run_batch``, the batch
   runner of ``gone remove`` (remove -> retry one image at a time -> write). The models are built
   once per worker process, on the first batch (a rerun with nothing left to do loads nothing),
   held by ``apache_beam.utils.shared.Shared`` and shared by the threads of the process (calls
   into them are serialised by a lock: one model call already uses every core);
4. write the outputs with the function ``gone remove`` uses (same names, formats and bytes;
   temp file + rename), then for a non-local ``--output`` copy each file to a temp name beside
   its destination and rename it;
5. write the dead-letter file (``--dead-letter``, default ``OUTPUT/dead_letter.tsv``: one
   ``input<TAB>reason`` line per failed input, empty when none failed; refused before anything
   runs when it is an input; the ``beam-temp-*`` folders a killed run left beside it are removed
   after a successful run) and print a summary
   (done / skipped / failed) from the pipeline's metrics.

Exit codes as ``gone remove``: 0 all inputs done or skipped, 1 some failed, 2 usage error.
See docs/beam.md for Dataflow and Flink commands and how to ship the weights to the workers.
"""
from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import tempfile
import threading
import time

from gone import cli, options

NAMESPACE = "gone"
DEAD_LETTER_NAME = "dead_letter.tsv"
_log = logging.getLogger("gone.beam")


# -- arguments -------------------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m gone.beam", allow_abbrev=False, formatter_class=cli.DefaultsHelpFormatter,
        description="Remove people from many images with Apache Beam. Takes every `gone remove` option; "
                    "arguments not listed here are passed to Beam as pipeline options "
                    "(e.g. --runner DataflowRunner --project P --region R --temp_location gs://...).")
    p.add_argument("--input", required=True, metavar="PATTERN",
                   help="Beam filesystem glob (local, gs://, s3://) or a local folder")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder (local or gs:// ...)")
    p.add_argument("--dead-letter", default=None, metavar="PATH",
                   help=f"file listing failed inputs and why (default: OUTPUT/{DEAD_LETTER_NAME})")
    options.add_remove_options(p)
    return p


def parse_args(argv=None):
    """(gone args, list of Beam pipeline arguments)."""
    args, beam_argv = build_parser().parse_known_args(argv)
    return args, beam_argv


def _is_local(path):
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.get_scheme(path) in (None, "file")


def _join(base, name):
    from apache_beam.io.filesystems import FileSystems
    return os.path.join(base, name) if _is_local(base) else FileSystems.join(base, name)


def input_pattern(pattern):
    """A local folder becomes ``FOLDER/*`` (image files only, as ``gone remove FOLDER``)."""
    if _is_local(pattern) and os.path.isdir(pattern):
        return os.path.join(pattern, "*"), True
    return pattern, False


# -- elements --------------------------------------------------------------------------------------
# A planned input is a gone.outputs.OutputJob (source and outputs as local paths or URIs); a loaded
# one is a gone.outputs.Item. Planning, the never-an-input check, the writer and the per-image
# retry are gone.outputs', as for `gone remove`.

def _basename(path):
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _reason(exc):
    return f"{type(exc).__name__}: {exc}"


FAILED = "failed"     # tagged output of (input, reason) pairs


def _counter(name):
    from apache_beam.metrics import Metrics
    return Metrics.counter(NAMESPACE, name)


def _fail(path, reason):
    import apache_beam as beam
    _counter("failed").inc()
    return beam.pvalue.TaggedOutput(FAILED, (str(path), reason))


class BeamFolder:
    """A non-local output folder through Beam's FileSystems (gone.outputs.LocalFolder's methods)."""

    def __init__(self, root):
        self.root = root

    def join(self, name):
        from apache_beam.io.filesystems import FileSystems
        return FileSystems.join(self.root, name)

    def exists(self, name):
        from apache_beam.io.filesystems import FileSystems
        return FileSystems.exists(self.join(name))

    def read_text(self, name):
        from apache_beam.io.filesystems import FileSystems
        if not self.exists(name):
            return None
        with FileSystems.open(self.join(name)) as f:
            return f.read().decode("utf-8")

    def write_text(self, name, text):
        from apache_beam.io.filesystems import FileSystems
        part = self.join(f".{name}.gone-tmp")
        with FileSystems.create(part) as f:
            f.write(text.encode("utf-8"))
        FileSystems.rename([part], [self.join(name)])


def output_folder(output):
    from gone.outputs import LocalFolder
    return LocalFolder(output) if _is_local(output) else BeamFolder(output)


def plan_inputs(paths, output, masks=None, save_masks=False):
    """All matched inputs -> OutputJob (main) and failures, planned by ``gone.outputs.plan_outputs``
    as ``gone remove`` plans them (unique names, the manifest's names on a rerun, existing files
    that are not the program's own kept, never an input written over), with the mask of each input
    with ``--masks``. Runs in one worker: it needs every name. The planned names are recorded in
    the output folder's manifest before any output is written."""
    from gone import outputs
    paths = sorted(set(paths))
    files = [pathlib.Path(p) if _is_local(p) else p for p in paths]
    exts = {f: outputs.output_ext_for(f) if _is_local(str(f)) else outputs.output_ext_for(
        pathlib.PurePosixPath(_basename(f))) for f in files}
    todo, mask_for, mask_files, failed = files, {}, [], []
    if masks:
        todo, mask_for, mask_files, problems = outputs.match_masks(files, masks)
        failed = [(f, problem.replace(f"{f}: ", "", 1)) for f, problem in problems]
    plan = outputs.plan_outputs(todo, output, save_masks=save_masks, folder=output_folder(output),
                                extra_inputs=mask_files, exts=exts)
    refused = {outputs.identity(src): out for out, src in plan.clobber}
    plan.jobs = [j for j in plan.jobs if not _clobbers(j, refused, save_masks, failed)]
    for j in plan.jobs:
        j.mask_in = mask_for.get(j.source)
    plan.commit()
    for f, reason in failed:
        yield _fail(f, reason)
    for j in plan.jobs:
        if j.clash:
            _log.info("%s: %s", j.source, j.clash)
        elif j.stem != pathlib.PurePosixPath(_basename(j.source)).stem:
            _log.info("%s: output names clash; written as %s", j.source, _basename(j.image_out))
        yield j


def _clobbers(job, refused, save_masks, failed):
    """True (and the input failed) when an output of ``job`` is an input file."""
    from gone.outputs import identity
    for out in [job.image_out] + ([job.mask_out] if save_masks else []):
        for key, clobbered in refused.items():
            if identity(out) == identity(clobbered):
                failed.append((job.source, f"refusing to write over the input {key}; choose another --output"))
                return True
    return False


def _is_remote(path):
    return not _is_local(str(path))


def _make_load_fn():
    import apache_beam as beam

    class LoadFn(beam.DoFn):
        """OutputJob -> Item (main); nothing when every output exists (a skip); or a failure."""

        def __init__(self, save_masks, overwrite):
            self.save_masks = save_masks
            self.overwrite = overwrite

        def process(self, job):
            from apache_beam.io.filesystems import FileSystems

            from gone.io import ImageReadError
            from gone.outputs import load_item, outputs_needed
            path = job.source
            which = outputs_needed(job, self.save_masks, self.overwrite,
                                   exists=None if _is_local(str(job.image_out)) else FileSystems.exists)
            if not which:   # before reading: a rerun costs one existence check per input
                _counter("skipped").inc()
                _log.info("%s: %s exists, not replaced (use --overwrite)", path, job.image_out)
                return
            try:
                if not _is_remote(path):
                    item = load_item(job, which)
                else:
                    with FileSystems.open(path) as f:
                        data = f.read()
                    with tempfile.TemporaryDirectory(prefix="gone_beam_") as tmp:
                        local = pathlib.Path(tmp) / _basename(path)
                        local.write_bytes(data)
                        item = load_item(job, which, local_source=local)
                    item.data = data
            except ImageReadError as e:
                yield _fail(path, str(e).replace(f"{path}: ", "", 1))
                return
            except Exception as e:  # an unreadable remote object, a permission error, a bad mask...
                yield _fail(path, f"cannot read: {_reason(e)}")
                return
            if item.loaded.note:
                _log.info("%s: %s", path, item.loaded.note)
            yield item

    return LoadFn


def localise_weights(args, cache_dir=None):
    """``args`` with ``--mrcnn-weights`` / ``--inpaint-checkpoint`` / ``--lama-weights`` given as non-local URIs (e.g.
    gs://bucket/mask_rcnn_coco.h5, gs://bucket/release_places2_256) copied to a local folder of
    this worker once (a checkpoint folder or ``snap-N`` prefix: every object under / beside it),
    so that every worker reads the weights from the bucket instead of its own disk."""
    from apache_beam.io.filesystems import FileSystems
    args = argparse.Namespace(**vars(args))
    for name in ("mrcnn_weights", "inpaint_checkpoint", "lama_weights"):
        uri = getattr(args, name, None)
        if not uri or _is_local(uri):
            continue
        base = pathlib.Path(cache_dir or tempfile.mkdtemp(prefix="gone_beam_weights_"))
        target = base / name
        target.mkdir(parents=True, exist_ok=True)
        local = target / _basename(uri)
        found = [] if uri.endswith("/") else FileSystems.match([uri])[0].metadata_list  # one file
        if not found and not uri.endswith("/"):
            found = FileSystems.match([uri + ".*"])[0].metadata_list       # checkpoint prefix snap-N
        if not found:
            found = FileSystems.match([uri.rstrip("/") + "/*"])[0].metadata_list  # checkpoint folder
            local = target
        if not found:
            raise FileNotFoundError(f"--{name.replace('_', '-')} {uri}: no such object")
        for m in found:
            FileSystems.copy([m.path], [str(target / _basename(m.path))])
        setattr(args, name, str(local))
    return args


class _Models:
    """What a worker process shares between its threads: the remover and a lock around it."""

    def __init__(self, remover):
        self.remover = remover
        self.lock = threading.Lock()


def _make_remove_fn():
    import apache_beam as beam
    from apache_beam.utils import shared

    class RemoveFn(beam.DoFn):
        """[Item] -> output files written (gone.outputs.run_batch); emits the input path, or a failure."""

        def __init__(self, args, setup=None):
            self.args = args
            self._setup = setup     # main's check_setup (not DoFn.setup; None: check in the worker)
            self._shared = shared.Shared()
            self._models = None

        def _acquire(self):
            if self._models is None:
                self._models = self._shared.acquire(
                    lambda: _Models(self._build()))
            return self._models

        def _build(self):
            """The remover; weights given as gs://... URIs are copied here and checked here, local
            ones were checked once by main (before any worker started)."""
            local = localise_weights(self.args)
            same = all(getattr(local, n, None) == getattr(self.args, n, None)
                       for n in ("mrcnn_weights", "inpaint_checkpoint", "lama_weights"))
            return options.build_remover(local, self._setup if same else None)

        def process(self, items):
            from gone.outputs import run_batch
            items = list(items)
            try:
                models = self._acquire()
            except Exception as e:  # models cannot be built: every image of the batch fails
                for it in items:
                    yield _fail(it.job.source, f"cannot build the models: {_reason(e)}")
                return
            for o in run_batch(models.remover, items, write=write_outputs, lock=models.lock):
                path = o.item.job.source
                if o.error:
                    yield _fail(path, o.error)
                    continue
                _counter("done").inc()
                _counter(o.result.status).inc()
                _log.info("%s: %s", path, o.result.message)
                yield str(path)

    return RemoveFn


def write_outputs(item, result):
    """Write one image's outputs with ``gone remove``'s writer (gone.outputs.write_job_outputs:
    atomic, original bytes for untouched images). Non-local outputs are written to a local staging
    folder, copied to a temp name beside the destination and renamed."""
    import dataclasses as dc

    from apache_beam.io.filesystems import FileSystems

    from gone.outputs import write_job_outputs
    job = item.job
    if _is_local(str(job.image_out)) and item.data is None:
        return write_job_outputs(job, item.loaded, result, item.which)
    with tempfile.TemporaryDirectory(prefix="gone_beam_") as tmp:
        tmp = pathlib.Path(tmp)
        src = job.source
        if item.data is not None:
            src = tmp / "in" / _basename(job.source)
            src.parent.mkdir()
            src.write_bytes(item.data)
        if _is_local(str(job.image_out)):
            return write_job_outputs(dc.replace(job, source=src), item.loaded, result, item.which)
        stage = tmp / "out"
        stage.mkdir()
        staged = dc.replace(job, source=src, image_out=stage / _basename(job.image_out),
                            mask_out=stage / _basename(job.mask_out))
        written = []
        for f, dest in zip(write_job_outputs(staged, item.loaded, result, item.which),
                           [job.image_out if w == "image" else job.mask_out for w in item.which]):
            part = f"{dest.rsplit('/', 1)[0]}/.{_basename(dest)}.gone-tmp"
            FileSystems.copy([str(f)], [part])
            FileSystems.rename([part], [dest])
            written.append(dest)
        return written


def _tsv_line(item):
    path, reason = item
    clean = lambda s: " ".join(str(s).split())  # noqa: E731  one line, no tabs
    _log.info("error: %s: %s", path, reason)
    return f"{clean(path)}\t{clean(reason)}"


class _QuietImport(logging.Filter):
    """Drops Beam's import-time note about optional GCP client libraries (it is not an error)."""

    def filter(self, record):
        return "apitools not found" not in record.getMessage()


def _import_beam():
    root = logging.getLogger()
    quiet = _QuietImport()
    root.addFilter(quiet)
    try:
        import apache_beam
    finally:
        root.removeFilter(quiet)
    return apache_beam


# -- the pipeline ----------------------------------------------------------------------------------
def build_pipeline(pipeline, args, pattern, images_only, setup=None):
    """Add the removal steps to ``pipeline``; returns the PCollection of failures (input, reason)."""
    import apache_beam as beam
    from apache_beam.io import fileio

    from gone.io import IMAGE_EXTENSIONS
    output, masks = args.output, getattr(args, "masks", None)
    paths = (pipeline
             | "Pattern" >> beam.Create([pattern])
             | "Match" >> fileio.MatchAll()
             | "Path" >> beam.Map(lambda m: m.path))
    if images_only:
        paths = paths | "ImagesOnly" >> beam.Filter(
            lambda p: pathlib.PurePosixPath(p).suffix.lower() in IMAGE_EXTENSIONS)
    planned = (paths
               | "AllNames" >> beam.combiners.ToList()
               | "Plan" >> beam.FlatMap(plan_inputs, output, masks, args.save_masks).with_outputs(FAILED, main="plans"))
    loaded = (planned.plans
              | "Spread" >> beam.Reshuffle()
              | "Load" >> beam.ParDo(_make_load_fn()(args.save_masks, args.overwrite)).with_outputs(FAILED, main="jobs"))
    removed = (loaded.jobs
               | "Batch" >> beam.BatchElements(min_batch_size=args.batch_size, max_batch_size=args.batch_size)
               | "Remove" >> beam.ParDo(_make_remove_fn()(args, setup)).with_outputs(FAILED, main="done"))
    failures = ((planned[FAILED], loaded[FAILED], removed[FAILED]) | "Failures" >> beam.Flatten())
    dead_letter = args.dead_letter or _join(output, DEAD_LETTER_NAME)
    (failures
     | "Sort" >> beam.combiners.ToList()
     | "Lines" >> beam.FlatMap(lambda items: [_tsv_line(i) for i in sorted(items)])
     | "DeadLetter" >> beam.io.WriteToText(dead_letter, shard_name_template="", num_shards=1))
    return failures


def _written_over_inputs(paths, pattern, images_only, masks=None):
    """[(path, input)] for each of ``paths`` (files the run writes besides the planned outputs:
    the dead-letter file) that is an input: a file the input pattern matches, or a mask
    (gone.outputs.refuse_inputs)."""
    from apache_beam.io.filesystems import FileSystems

    from gone.io import IMAGE_EXTENSIONS
    from gone.outputs import mask_index, refuse_inputs
    present = [p for p in paths if FileSystems.exists(p)]
    if not present:
        return []
    inputs = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if images_only:
        inputs = [p for p in inputs if pathlib.PurePosixPath(p).suffix.lower() in IMAGE_EXTENSIONS]
    if masks:
        inputs += [m for ms in mask_index(masks).values() for m in ms]
    return refuse_inputs(present, inputs)


def clean_beam_temps(dead_letter, before):
    """Remove the ``beam-temp-<dead letter name>-<uuid>`` folders that Beam's WriteToText leaves
    beside the dead-letter file when a run is killed (last changed before ``before``, a
    time.time(): not this run's, nor one of a run started since); returns their names."""
    import glob
    import shutil

    from apache_beam.io.filesystems import FileSystems
    folder, name = dead_letter.rstrip("/").rsplit("/", 1) if "/" in dead_letter else (".", dead_letter)
    removed = []
    if _is_local(dead_letter):
        for top in sorted(glob.glob(os.path.join(glob.escape(folder), f"beam-temp-{glob.escape(name)}-*"))):
            try:
                if os.path.isdir(top) and os.path.getmtime(top) < before:
                    shutil.rmtree(top)
                    removed.append(_basename(top))
            except OSError:
                pass
        return removed
    try:   # object stores: no folders, the objects under the prefix
        found = FileSystems.match([FileSystems.join(folder, f"beam-temp-{name}-*/*")])[0].metadata_list
    except Exception:
        return removed
    stale = [m.path for m in found if (m.last_updated_in_seconds or 0) < before]
    if stale:
        try:
            FileSystems.delete(stale)
            removed = sorted({_basename(p.rsplit("/", 1)[0]) for p in stale})
        except Exception:
            pass
    return removed


def record_written(output):
    """Record in the output folder's manifest which planned outputs now exist (the workers wrote
    them; the planned names were recorded before any was written)."""
    from gone.outputs import Manifest
    folder = output_folder(output)
    manifest = Manifest(folder)
    names = [n for e in manifest.planned.values() for n in (e.get("image"), e.get("mask")) if n]
    manifest.record(written=[n for n in names if folder.exists(n)])
    manifest.save()


def summary(result):
    """{'done', 'skipped', 'failed', 'inpainted', 'nothing_to_remove', 'skipped_large_crop'} from metrics."""
    from apache_beam.metrics.metric import MetricsFilter
    counts = dict.fromkeys(("done", "skipped", "failed", "inpainted", "nothing_to_remove", "skipped_large_crop"), 0)
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        if c.key.metric.name in counts:
            value = c.committed if c.committed is not None else c.attempted
            counts[c.key.metric.name] += int(value or 0)
    return counts


def main(argv=None):
    try:
        args, beam_argv = parse_args(argv)
    except SystemExit as e:   # argparse: exit 2 on a bad option or value, 0 on --help
        return int(e.code or 0)
    if not args.quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gone.beam: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
        _log.propagate = False
    try:
        options.validate_remove_args(args)
        setup = options.check_setup(args)   # the weights, before any worker starts or anything is created
    except (ValueError, options.SetupError) as e:
        cli.err(f"error: {e}")
        return cli.EXIT_USAGE
    try:
        beam = _import_beam()
    except ImportError as e:
        cli.err(f"error: Apache Beam is not installed ({e}); pip install 'gone[beam]'")
        return cli.EXIT_USAGE
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    pattern, images_only = input_pattern(args.input)
    try:
        matched = FileSystems.match([pattern], limits=[1])[0].metadata_list   # one is enough to know
    except Exception as e:
        cli.err(f"error: {args.input}: cannot match: {e}")
        return cli.EXIT_USAGE
    if not matched:
        cli.err(f"error: {args.input}: pattern matches no files")
        return cli.EXIT_USAGE
    dead_letter = args.dead_letter or _join(args.output, DEAD_LETTER_NAME)
    refused = _written_over_inputs([dead_letter], pattern, images_only, getattr(args, "masks", None))
    if refused:
        cli.err(f"error: --dead-letter {refused[0][0]} is the input {refused[0][1]}; refusing to write over "
                 f"it, choose another --dead-letter")
        return cli.EXIT_USAGE
    if _is_local(args.output):
        from gone.io import clean_stale_temps
        try:
            pathlib.Path(args.output).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            cli.err(f"error: cannot create output folder {args.output}: {e}")
            return cli.EXIT_USAGE
        for stale in clean_stale_temps(args.output):
            _log.info("removed %s, left by an interrupted run", stale.name)
    known = set(PipelineOptions([]).get_all_options())
    unknown = [a for a in beam_argv if a.startswith("--") and a[2:].split("=", 1)[0].replace("-", "_") not in known]
    if unknown:   # a misspelt option would otherwise be dropped by Beam with a warning
        cli.err(f"error: unknown option(s) {' '.join(unknown)} (neither a gone remove option nor a Beam "
                 f"pipeline option; see python -m gone.beam --help)")
        return cli.EXIT_USAGE
    try:
        pipeline_options = PipelineOptions(beam_argv)
    except Exception as e:
        cli.err(f"error: bad Beam pipeline options {beam_argv}: {e}")
        return cli.EXIT_USAGE
    pipeline = beam.Pipeline(options=pipeline_options)
    build_pipeline(pipeline, args, pattern, images_only, setup)
    started = time.time()
    result = pipeline.run()
    result.wait_until_finish()
    c = summary(result)
    for stale in clean_beam_temps(dead_letter, before=started):
        _log.info("removed %s, left by an interrupted run", stale)
    record_written(args.output)
    print(f"gone.beam: {c['done']} done ({c['inpainted']} inpainted, {c['nothing_to_remove']} nothing to remove, "
          f"{c['skipped_large_crop']} skipped (large crop)), {c['skipped']} skipped (output exists), "
          f"{c['failed']} failed{f' (listed in {dead_letter})' if c['failed'] else ''}; outputs in {args.output}",
          flush=True)
    return cli.EXIT_FAILED if c["failed"] else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
