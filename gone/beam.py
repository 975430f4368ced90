"""Batch people removal on Apache Beam: ``python -m gone.beam --input PATTERN --output DIR``.

Every ``gone remove`` option is accepted (``--strategy``, ``--classes``, ``--batch-size``,
``--save-masks``, ``--overwrite``...); the remaining arguments are Beam pipeline options
(``--runner DirectRunner|DataflowRunner|FlinkRunner|SparkRunner``, ``--direct_num_workers``, ...).
The default runner is the DirectRunner, so it works on one machine with no cluster.

PATTERN is a Beam filesystem glob (local, ``gs://``, ``s3://`` with the matching Beam extra) or a
local folder (its image files, as ``gone remove FOLDER``). The pipeline:

1. match the files; two inputs that map to the same output name: the first (sorted) wins, the
   others go to the dead-letter file (``gone remove`` refuses them the same way);
2. read and decode each file; an undecodable one goes to the dead-letter file; one whose output
   already exists is skipped (unless ``--overwrite``), so a rerun only does what is left;
3. batch the images (``--batch-size``) and run detector + inpainter on each batch. The models are
   built once per worker process, on the first batch (a rerun with nothing left to do loads
   nothing), held by ``apache_beam.utils.shared.Shared`` and shared by the threads of the process
   (calls into them are serialised by a lock: one model call already uses every core). A batch
   that fails is retried image by image so that only the bad image fails;
4. write the outputs with the function ``gone remove`` uses (same names, formats and bytes;
   temp file + rename), then for a non-local ``--output`` copy each file to a temp name beside
   its destination and rename it;
5. write the dead-letter file (``--dead-letter``, default ``OUTPUT/dead_letter.tsv``: one
   ``input<TAB>reason`` line per failed input, empty when none failed) and print a summary
   (done / skipped / failed) from the pipeline's metrics.

Exit codes as ``gone remove``: 0 all inputs done or skipped, 1 some failed, 2 usage error.
See docs/beam.md for Dataflow and Flink commands and how to ship the weights to the workers.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import pathlib
import sys
import tempfile
import threading
import warnings

from gone import cli

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
    cli.add_remove_options(p)
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
@dataclasses.dataclass
class Planned:
    """One input with its planned outputs (``gone remove``'s naming rule)."""
    path: str                    # input as matched (local path or URI)
    stem: str                    # output stem (gone.cli.plan_output_stems)
    ext: str                     # output extension
    fmt: str                     # Pillow format written
    image_out: str               # output image (local path or URI)
    mask_out: str                # output mask
    mask_in: str | None = None   # --masks: the user's hole mask for this image


@dataclasses.dataclass
class Job:
    """A planned input, read and decoded, on its way to the models."""
    plan: Planned
    loaded: object               # gone.io.LoadedImage
    which: tuple                 # outputs to write: "image" and/or "mask" (gone.cli.outputs_needed)
    hole: object = None          # --masks: bool HxW
    data: bytes | None = None    # original bytes, for non-local inputs only (untouched copies)


def _basename(path):
    return path.rstrip("/").rsplit("/", 1)[-1]


def _reason(exc):
    return f"{type(exc).__name__}: {exc}"


FAILED = "failed"     # tagged output of (input, reason) pairs


def _counter(name):
    from apache_beam.metrics import Metrics
    return Metrics.counter(NAMESPACE, name)


def _fail(path, reason):
    import apache_beam as beam
    _counter("failed").inc()
    return beam.pvalue.TaggedOutput(FAILED, (path, reason))


def plan_inputs(paths, output, masks=None):
    """All matched inputs -> Planned (main) and failures, as ``gone remove`` plans them: unique
    output names (``gone.cli.plan_output_stems``), the mask of each input with ``--masks``, and
    never an output that is one of the inputs. Runs in one worker: it needs every name."""
    paths = sorted(set(paths))
    local_paths = {p: pathlib.Path(p) for p in paths}
    formats = {p: cli.output_ext_for(local_paths[p]) if _is_local(p) else cli.output_ext_for(pathlib.PurePosixPath(_basename(p)))
               for p in paths}
    stems = cli.plan_output_stems([local_paths[p] for p in paths], {local_paths[p]: formats[p][0] for p in paths})
    index = cli.mask_index(masks) if masks else None
    inputs = {_identity(p): p for p in paths}
    if index is not None:
        inputs.update({_identity(str(m)): str(m) for ms in index.values() for m in ms})
    for p in paths:
        ext, fmt = formats[p]
        stem = stems[local_paths[p]]
        plan = Planned(p, stem, ext, fmt, _join(output, f"{stem}{ext}"), _join(output, f"{stem}_mask.png"))
        if index is not None:
            try:
                plan.mask_in = str(cli.find_mask(local_paths[p], index, masks))
            except ValueError as e:
                yield _fail(p, str(e).replace(f"{p}: ", "", 1))
                continue
        clobber = [out for out in (plan.image_out, plan.mask_out) if _identity(out) in inputs]
        if clobber:
            yield _fail(p, f"refusing to write over the input {inputs[_identity(clobber[0])]}; choose another --output")
            continue
        if stem != pathlib.PurePosixPath(_basename(p)).stem:
            _log.info("%s: output names clash; written as %s", p, _basename(plan.image_out))
        yield plan


def _identity(path):
    """A comparable identity of a file: the resolved local path (links followed), else the URI."""
    if _is_local(path):
        return str(pathlib.Path(path).resolve())
    return path


def _needed(plan, save_masks, overwrite):
    from apache_beam.io.filesystems import FileSystems
    need = []
    if overwrite or not FileSystems.exists(plan.image_out):
        need.append("image")
    if save_masks and (overwrite or not FileSystems.exists(plan.mask_out)):
        need.append("mask")
    return tuple(need)


def _make_load_fn():
    import apache_beam as beam

    class LoadFn(beam.DoFn):
        """Planned -> Job (main); nothing when every output exists (a skip); or a failure."""

        def __init__(self, save_masks, overwrite):
            self.save_masks = save_masks
            self.overwrite = overwrite

        def process(self, plan):
            from apache_beam.io.filesystems import FileSystems

            from gone.io import ImageReadError, load_image, read_mask
            path = plan.path
            which = _needed(plan, self.save_masks, self.overwrite)
            if not which:   # before reading: a rerun costs one existence check per input
                _counter("skipped").inc()
                _log.info("%s: %s exists, not replaced (use --overwrite)", path, plan.image_out)
                return
            data = None
            try:
                if _is_local(path):
                    loaded = load_image(path)
                else:
                    with FileSystems.open(path) as f:
                        data = f.read()
                    with tempfile.TemporaryDirectory(prefix="gone_beam_") as tmp:
                        local = pathlib.Path(tmp) / _basename(path)
                        local.write_bytes(data)
                        loaded = load_image(local)
                hole = None if plan.mask_in is None else read_mask(plan.mask_in, loaded.rgb.shape)
            except ImageReadError as e:
                yield _fail(path, str(e).replace(f"{path}: ", "", 1))
                return
            except Exception as e:  # an unreadable remote object, a permission error...
                yield _fail(path, f"cannot read: {_reason(e)}")
                return
            if loaded.note:
                _log.info("%s: %s", path, loaded.note)
            yield Job(plan, loaded, which, hole, data)

    return LoadFn


def localise_weights(args, cache_dir=None):
    """``args`` with ``--mrcnn-weights`` / ``--inpaint-checkpoint`` given as non-local URIs (e.g.
    gs://bucket/mask_rcnn_coco.h5, gs://bucket/release_places2_256) copied to a local folder of
    this worker once (a checkpoint folder or ``snap-N`` prefix: every object under / beside it),
    so that every worker reads the weights from the bucket instead of its own disk."""
    from apache_beam.io.filesystems import FileSystems
    args = argparse.Namespace(**vars(args))
    for name in ("mrcnn_weights", "inpaint_checkpoint"):
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
        """[Job] -> output files written; emits the input path, or a failure."""

        def __init__(self, args):
            self.args = args
            self._shared = shared.Shared()
            self._models = None

        def _acquire(self):
            if self._models is None:
                # cli.build_remover looked up at call time (tests replace it with fakes)
                self._models = self._shared.acquire(
                    lambda: _Models(cli.build_remover(localise_weights(self.args))))
            return self._models

        def _remove(self, models, jobs):
            """[(job, result or exception)], retrying a failed batch image by image."""
            from gone.pipeline import LargeCropWarning
            try:
                with models.lock, warnings.catch_warnings():
                    warnings.simplefilter("ignore", LargeCropWarning)  # reported through the message
                    holes = None if jobs[0].hole is None else [j.hole for j in jobs]
                    results = models.remover.remove([j.loaded.rgb for j in jobs], hole_masks=holes)
                return list(zip(jobs, results))
            except Exception as e:
                if len(jobs) == 1:
                    return [(jobs[0], e)]
                out = []
                for j in jobs:
                    out.extend(self._remove(models, [j]))
                return out

        def process(self, jobs):
            jobs = list(jobs)
            try:
                models = self._acquire()
            except Exception as e:  # models cannot be built: every image of the batch fails
                for j in jobs:
                    yield _fail(j.plan.path, f"cannot build the models: {_reason(e)}")
                return
            for job, result in self._remove(models, jobs):
                path = job.plan.path
                if isinstance(result, Exception):
                    yield _fail(path, _reason(result))
                    continue
                try:
                    write_outputs(job, result)
                except Exception as e:
                    yield _fail(path, f"cannot write output: {_reason(e)}")
                    continue
                _counter("done").inc()
                _counter(result.status).inc()
                _log.info("%s: %s", path, result.message)
                yield path

    return RemoveFn


def write_outputs(job, result):
    """Write one image's outputs with ``gone remove``'s writer (``gone.cli.write_job_outputs``:
    atomic, original bytes for untouched images). Non-local outputs are written to a local staging
    folder, copied to a temp name beside the destination and renamed."""
    from apache_beam.io.filesystems import FileSystems
    plan = job.plan
    with tempfile.TemporaryDirectory(prefix="gone_beam_") as tmp:
        tmp = pathlib.Path(tmp)
        src = pathlib.Path(plan.path)
        if job.data is not None:
            src = tmp / "in" / _basename(plan.path)
            src.parent.mkdir()
            src.write_bytes(job.data)
        if _is_local(plan.image_out):
            out = cli.OutputJob(src, plan.stem, plan.ext, plan.fmt, pathlib.Path(plan.image_out),
                                pathlib.Path(plan.mask_out))
            cli.write_job_outputs(out, job.loaded, result, job.which)
            return
        stage = tmp / "out"
        stage.mkdir()
        out = cli.OutputJob(src, plan.stem, plan.ext, plan.fmt, stage / _basename(plan.image_out),
                            stage / _basename(plan.mask_out))
        for f, dest in zip(cli.write_job_outputs(out, job.loaded, result, job.which),
                           [plan.image_out if w == "image" else plan.mask_out for w in job.which]):
            part = f"{dest.rsplit('/', 1)[0]}/.{_basename(dest)}.gone-tmp"
            FileSystems.copy([str(f)], [part])
            FileSystems.rename([part], [dest])


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
def build_pipeline(pipeline, args, pattern, images_only):
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
               | "Plan" >> beam.FlatMap(plan_inputs, output, masks).with_outputs(FAILED, main="plans"))
    loaded = (planned.plans
              | "Spread" >> beam.Reshuffle()
              | "Load" >> beam.ParDo(_make_load_fn()(args.save_masks, args.overwrite)).with_outputs(FAILED, main="jobs"))
    removed = (loaded.jobs
               | "Batch" >> beam.BatchElements(min_batch_size=args.batch_size, max_batch_size=args.batch_size)
               | "Remove" >> beam.ParDo(_make_remove_fn()(args)).with_outputs(FAILED, main="done"))
    failures = ((planned[FAILED], loaded[FAILED], removed[FAILED]) | "Failures" >> beam.Flatten())
    dead_letter = args.dead_letter or _join(output, DEAD_LETTER_NAME)
    (failures
     | "Sort" >> beam.combiners.ToList()
     | "Lines" >> beam.FlatMap(lambda items: [_tsv_line(i) for i in sorted(items)])
     | "DeadLetter" >> beam.io.WriteToText(dead_letter, shard_name_template="", num_shards=1))
    return failures


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
    args, beam_argv = parse_args(argv)
    if not args.quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gone.beam: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
        _log.propagate = False
    try:
        cli._validate_remove_args(args)
    except ValueError as e:
        cli._err(f"error: {e}")
        return cli.EXIT_USAGE
    try:
        beam = _import_beam()
    except ImportError as e:
        cli._err(f"error: Apache Beam is not installed ({e}); pip install 'gone[beam]'")
        return cli.EXIT_USAGE
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    pattern, images_only = input_pattern(args.input)
    try:
        matched = FileSystems.match([pattern], limits=[1])[0].metadata_list   # one is enough to know
    except Exception as e:
        cli._err(f"error: {args.input}: cannot match: {e}")
        return cli.EXIT_USAGE
    if not matched:
        cli._err(f"error: {args.input}: pattern matches no files")
        return cli.EXIT_USAGE
    if _is_local(args.output):
        from gone.io import clean_stale_temps
        try:
            pathlib.Path(args.output).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            cli._err(f"error: cannot create output folder {args.output}: {e}")
            return cli.EXIT_USAGE
        for stale in clean_stale_temps(args.output):
            _log.info("removed %s, left by an interrupted run", stale.name)
    known = set(PipelineOptions([]).get_all_options())
    unknown = [a for a in beam_argv if a.startswith("--") and a[2:].split("=", 1)[0].replace("-", "_") not in known]
    if unknown:   # a misspelt option would otherwise be dropped by Beam with a warning
        cli._err(f"error: unknown option(s) {' '.join(unknown)} (neither a gone remove option nor a Beam "
                 f"pipeline option; see python -m gone.beam --help)")
        return cli.EXIT_USAGE
    try:
        options = PipelineOptions(beam_argv)
    except Exception as e:
        cli._err(f"error: bad Beam pipeline options {beam_argv}: {e}")
        return cli.EXIT_USAGE
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, args, pattern, images_only)
    result = pipeline.run()
    result.wait_until_finish()
    c = summary(result)
    dead_letter = args.dead_letter or _join(args.output, DEAD_LETTER_NAME)
    print(f"gone.beam: {c['done']} done ({c['inpainted']} inpainted, {c['nothing_to_remove']} nothing to remove, "
          f"{c['skipped_large_crop']} skipped (large crop)), {c['skipped']} skipped (output exists), "
          f"{c['failed']} failed{f' (listed in {dead_letter})' if c['failed'] else ''}; outputs in {args.output}",
          flush=True)
    return cli.EXIT_FAILED if c["failed"] else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
