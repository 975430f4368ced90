"""Train DeepFill v1: `python -m inpaint.train --config inpaint/inpaint.yml --data DIR ...`.

The data source is an image folder, a file list (`.flist`, one path per line, as the original) or a
COCO split (`--coco annotations.json [--coco-images DIR]`, or a data_prep.coco_splits manifest
with `--coco_dir /data/coco`, the image root every GONE command takes). Training resumes from the
newest `snap-<step>.npz` in the log directory unless `--no-resume` ("resumed from step N" is
printed even with --quiet); `--restore` (or MODEL_RESTORE) initialises weights from Yu's TF1
checkpoint or a native .npz when there is no snapshot yet. `--epochs E` trains E epochs, an epoch
being one pass of the generator over the training split (N // BATCH_SIZE generator steps; Yu's
TRAIN_SPE is only a snapshot period); `epoch-<E>.npz` is kept for every epoch, the newest
`--keep` step snapshots `snap-<step>.npz` are kept.
Any inpaint.yml field can be overridden with `--set NAME=VALUE` (e.g. `--set BATCH_SIZE=8`).
Works with KERAS_BACKEND=tensorflow (default) or jax.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m inpaint.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help="inpaint.yml (default: the packaged v1.0.0 copy)")
    source = parser.add_argument_group("training data (exactly one)")
    source.add_argument("--data", help="image folder (or a .flist / COCO .json)")
    source.add_argument("--flist", help="file list, one image path per line")
    source.add_argument("--coco", help="COCO-format annotations json of the split")
    parser.add_argument("--coco-images", help="image folder of the COCO split (default: images/ beside it)")
    parser.add_argument("--coco_dir", "--coco-dir", dest="coco_dir",
                        help="COCO root: split manifests / annotation jsons (training and validation) "
                             "find their images under <coco_dir>/<source_subset>/")
    parser.add_argument("--val-data", help="validation images (folder / .flist / .json) for early stopping")
    parser.add_argument("--log-dir", help="snapshots and summaries (default: LOG_DIR)")
    parser.add_argument("--steps", type=int, help="total generator steps (default: MAX_ITERS)")
    parser.add_argument("--epochs", type=int, help="total epochs (passes of the generator over the split)")
    parser.add_argument("--batch-size", type=int, help="BATCH_SIZE")
    parser.add_argument("--pretrain-coarse", action="store_true", help="PRETRAIN_COARSE_NETWORK: True")
    parser.add_argument("--train-critics-when-pretraining", action="store_true",
                        help="also run the critic steps during coarse pretraining (the original does not)")
    parser.add_argument("--optimizer", default="shared", choices=("shared", "separate"),
                        help="shared: the original's single Adam for critics and generator (default); "
                             "separate: one Adam each")
    parser.add_argument("--resize", default="cv2", choices=("cv2", "pil"),
                        help="cv2: INTER_LINEAR without antialiasing, as the original (default); pil: antialiased")
    parser.add_argument("--distribution", default="none", choices=("none", "data_parallel"),
                        help="data_parallel: split each global batch over all local devices "
                             "(keras.distribution.DataParallel on JAX, MirroredStrategy on TensorFlow)")
    parser.add_argument("--restore", help="initial weights: Yu's TF1 checkpoint or a native .npz "
                                          "(default: MODEL_RESTORE)")
    parser.add_argument("--no-resume", action="store_true", help="ignore snapshots in the log dir")
    parser.add_argument("--mask-kind", default="bbox", choices=("bbox", "free_form", "user"))
    parser.add_argument("--user-masks", help="folder or .flist of mask images (with --mask-kind user)")
    parser.add_argument("--snapshot-every", type=int, help="generator steps between snapshots (default TRAIN_SPE)")
    parser.add_argument("--keep", type=int, default=5,
                        help="step snapshots to keep (0: all); epoch snapshots are never deleted")
    parser.add_argument("--log-every", type=int, default=10, help="steps between scalar summaries")
    parser.add_argument("--image-every", type=int, help="steps between image grids (default VAL_PSTEPS)")
    parser.add_argument("--val-every", type=int, help="steps between validations (default VAL_PSTEPS)")
    parser.add_argument("--val-batches", type=int, help="at most this many validation batches")
    parser.add_argument("--patience", type=int, help="early stopping: validations without improvement")
    parser.add_argument("--min-delta", type=float, default=0.0, help="early stopping: minimum improvement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override an inpaint.yml field (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _overrides(args):
    values = {}
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        values[name.strip()] = value.strip()
    if args.batch_size:
        values["BATCH_SIZE"] = args.batch_size
    if args.pretrain_coarse:
        values["PRETRAIN_COARSE_NETWORK"] = True
    if args.log_dir:
        values["LOG_DIR"] = args.log_dir
    return values


def main(argv=None):
    args = build_parser().parse_args(argv)
    from inpaint.config import InpaintConfig
    from inpaint.data import DataError, InpaintImageDataset, resolve_image_source

    try:
        config = InpaintConfig.from_yaml(args.config).override(_overrides(args))
        if args.steps is not None and args.epochs is not None:
            raise ValueError("give --steps or --epochs, not both")
        paths = resolve_image_source(args.data, args.flist, args.coco, args.coco_images, args.coco_dir)
        dataset = InpaintImageDataset.from_config(config, paths, seed=args.seed, resize=args.resize)
        val_dataset = None
        if args.val_data:
            val_paths = resolve_image_source(args.val_data, coco_dir=args.coco_dir)
            val_dataset = InpaintImageDataset.from_config(config, val_paths, seed=args.seed, shuffle=False,
                                                          resize=args.resize)
        user_masks = resolve_image_source(args.user_masks) if args.user_masks else None

        from inpaint.trainer import InpaintTrainer, SnapshotSkippedWarning
        trainer = InpaintTrainer(config, log_dir=config.LOG_DIR, mask_kind=args.mask_kind,
                                 user_mask_paths=user_masks, seed=args.seed,
                                 snapshot_every=args.snapshot_every, keep_snapshots=args.keep,
                                 log_every=args.log_every, image_every=args.image_every,
                                 optimizer=args.optimizer, distribution=args.distribution,
                                 train_critics_when_pretraining=args.train_critics_when_pretraining,
                                 verbose=0 if args.quiet else 1)
        if trainer.removed_temp_files:
            print(f"removed {len(trainer.removed_temp_files)} temp file(s) of an interrupted run")
        trainer.verbose, verbose = 0, trainer.verbose
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always", SnapshotSkippedWarning)
            resumed = 0 if args.no_resume else trainer.resume()
        for warning in skipped:   # one line each (a truncated or corrupt snap-N.npz)
            if issubclass(warning.category, SnapshotSkippedWarning):
                print(f"warning: {warning.message}", file=sys.stderr)
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        trainer.verbose = verbose
        if resumed:
            print(f"resumed from step {resumed} ({trainer.resumed_from})")
        restore = args.restore or config.MODEL_RESTORE
        if not resumed and restore:
            count = trainer.load_weights(restore)
            print(f"initialised {count} variables from {restore}")
        critics = "no critic steps (coarse pretraining)" if trainer.skip_critics else \
            f"{config.CRITIC_STEPS} critic steps per generator step"
        print(f"training {len(paths)} images ({len(dataset)} generator steps of {config.BATCH_SIZE} per epoch), "
              f"{critics}, optimizer {args.optimizer}, log dir {Path(config.LOG_DIR)}")
        trainer.fit(dataset, steps=args.steps, epochs=args.epochs, val_dataset=val_dataset, val_every=args.val_every,
                    patience=args.patience, min_delta=args.min_delta, max_val_batches=args.val_batches)
    except KeyboardInterrupt:
        print("\ninterrupted: resume with the same command (the last snapshot is kept)", file=sys.stderr)
        return 130
    except (DataError, FileNotFoundError, ValueError, NotImplementedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"done at step {trainer.step}; snapshots in {trainer.log_dir}")
    return 0


if __name__ == "__main__":
    from gonefiles.quiet import filter_native_stderr

    filter_native_stderr()   # TensorFlow's start-up and run-time notes ("remapper failed", ...)
    sys.exit(main())
