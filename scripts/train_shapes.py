"""Train Mask R-CNN on Matterport's synthetic shapes dataset from scratch, then report mAP@0.5.

No pretrained weights are used (none can be downloaded here): every layer is trained
(`layers="all"`). The shapes notebook reached mAP@0.5 = 0.95 starting from COCO weights.

GPU run (the target, mAP@0.5 >= 0.9; expected to need a few thousand steps):

    KERAS_BACKEND=jax python scripts/train_shapes.py --backbone resnet50 --epochs 30 --steps 100 \\
        --batch 8 --image-size 128 --lr 0.01 --out-dir runs/shapes_r50

Short CPU smoke run (shows the pipeline works; the mAP it reports is far from converged):

    python scripts/train_shapes.py --backbone small --epochs 2 --steps 20 --batch 2 --image-size 64 \\
        --train-images 64 --eval-images 20 --out-dir runs/shapes_cpu

Writes <out-dir>/result.json and <out-dir>/result.md (atomically) and prints the mAP.
Checkpoints (Matterport's `mask_rcnn_shapes_<epoch>.h5`, with the optimizer state beside them) and
TensorBoard logs go to <out-dir>/logs/shapes<YYYYmmddTHHMM>/. `--resume` continues the last run
under <out-dir> from its last checkpoint, at the next epoch (a killed run loses at most the
epoch it was in). The evaluation follows Matterport's flow: a new inference model,
`find_last()`, `load_weights(..., by_name=True)`.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from gonefiles import write_text_atomic


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101", "small"],
                   help="'small': a 5-stage conv backbone for CPU runs")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps", type=int, default=100, help="steps per epoch")
    p.add_argument("--batch", type=int, default=8, help="images per step")
    p.add_argument("--image-size", type=int, default=128, help="square image side (multiple of 64)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (Matterport default 0.001)")
    p.add_argument("--train-images", type=int, default=500)
    p.add_argument("--val-images", type=int, default=50)
    p.add_argument("--eval-images", type=int, default=100, help="held-out images for mAP@0.5")
    p.add_argument("--validation-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="runs/shapes")
    p.add_argument("--stop-target-gradients", action="store_true",
                   help="treat the heads' ROI targets as constants (Matterport's graph lets the box "
                        "targets train the RPN too, which can overflow to NaN from scratch at high --lr)")
    p.add_argument("--resume", action="store_true",
                   help="continue the last run under --out-dir from its last checkpoint (same options)")
    args = p.parse_args(argv)
    if args.image_size % 64:
        p.error(f"--image-size must be a multiple of 64, got {args.image_size}")
    for name in ("epochs", "steps", "batch", "train_images", "eval_images"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def make_configs(args):
    from mrcnn.datasets.shapes import ShapesConfig
    from mrcnn import training

    fields = dict(IMAGES_PER_GPU=args.batch, IMAGE_MIN_DIM=args.image_size, IMAGE_MAX_DIM=args.image_size,
                  STEPS_PER_EPOCH=args.steps, VALIDATION_STEPS=args.validation_steps,
                  # From scratch: BatchNorm must learn its statistics (Matterport freezes them
                  # because it fine-tunes pretrained weights with tiny batches).
                  TRAIN_BN=None)
    scale = args.image_size / 128.0
    fields["RPN_ANCHOR_SCALES"] = tuple(max(4, int(round(s * scale))) for s in (8, 16, 32, 64, 128))
    if args.backbone == "small":
        backbone, shapes = training.small_backbone()
        fields.update(BACKBONE=backbone, COMPUTE_BACKBONE_SHAPE=shapes, TOP_DOWN_PYRAMID_SIZE=64,
                      FPN_CLASSIF_FC_LAYERS_SIZE=256, TRAIN_ROIS_PER_IMAGE=32, POST_NMS_ROIS_TRAINING=500,
                      POST_NMS_ROIS_INFERENCE=300)
    else:
        fields["BACKBONE"] = args.backbone
    train_config = ShapesConfig(**fields)
    infer_fields = dict(fields, IMAGES_PER_GPU=1)
    inference_config = ShapesConfig(**infer_fields)
    return train_config, inference_config


def evaluate_map(model, dataset, config, iou_threshold=0.5):
    """Mean over images of utils.compute_ap at iou_threshold (Matterport's notebook evaluation)."""
    from mrcnn import utils
    from gonefiles.quiet import progbar
    from mrcnn.data_generator import load_image_gt

    aps = []
    bar = progbar(len(dataset.image_ids), unit_name="image")
    for image_id in dataset.image_ids:
        image, _, gt_class_ids, gt_boxes, gt_masks = load_image_gt(dataset, config, image_id)
        r = model.detect([image], verbose=0)[0]
        ap, _, _, _ = utils.compute_ap(gt_boxes, gt_class_ids, gt_masks, r["rois"], r["class_ids"], r["scores"],
                                       r["masks"], iou_threshold=iou_threshold)
        aps.append(float(ap))
        bar.add(1)
    return float(np.mean(aps)), aps


def main(argv=None):
    args = parse_args(argv)
    import keras

    from mrcnn.datasets.shapes import ShapesDataset
    from mrcnn.model import MaskRCNN

    keras.utils.set_random_seed(args.seed)
    train_config, inference_config = make_configs(args)
    size = args.image_size
    buffer = min(20, size // 4)
    datasets = {}
    for name, count, seed in (("train", args.train_images, args.seed), ("val", args.val_images, args.seed + 1),
                              ("eval", args.eval_images, args.seed + 2)):
        ds = ShapesDataset()
        ds.load_shapes(max(count, 1), size, size, seed=seed, buffer=buffer)
        ds.prepare()
        datasets[name] = ds

    log_root = os.path.join(args.out_dir, "logs")
    model = MaskRCNN(mode="training", config=train_config, model_dir=log_root,
                     stop_target_gradients=args.stop_target_gradients)
    if args.resume:
        try:
            last = model.find_last()
        except FileNotFoundError as e:
            sys.exit(f"--resume: nothing to resume under {log_root} ({e})")
        model.load_weights(last, by_name=True)
        print(f"Resuming {last} at epoch {model.epoch + 1} of {args.epochs}")
    first_epoch = model.epoch
    start = time.time()
    model.train(datasets["train"], datasets["val"] if args.validation_steps else None,
                learning_rate=args.lr, epochs=args.epochs, layers="all", seed=args.seed)
    train_seconds = time.time() - start

    inference = MaskRCNN(mode="inference", config=inference_config, model_dir=log_root)
    checkpoint = inference.find_last()
    inference.load_weights(checkpoint, by_name=True)
    start = time.time()
    mean_ap, aps = evaluate_map(inference, datasets["eval"], inference_config)
    eval_seconds = time.time() - start

    result = {
        "mAP@0.5": round(mean_ap, 4),
        "eval_images": len(aps),
        "backbone": args.backbone,
        "backend": keras.backend.backend(),
        "epochs": args.epochs,
        "steps_per_epoch": args.steps,
        "batch": args.batch,
        "image_size": size,
        "learning_rate": args.lr,
        "stop_target_gradients": args.stop_target_gradients,
        "train_images": args.train_images,
        "train_seconds": round(train_seconds, 1),
        "resumed_at_epoch": first_epoch if args.resume else None,
        "train_images_per_s": round(max(args.epochs - first_epoch, 0) * args.steps * args.batch
                                    / max(train_seconds, 1e-9), 2),
        "eval_seconds": round(eval_seconds, 1),
        "checkpoint": checkpoint,
        "command": "python scripts/train_shapes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_text_atomic(os.path.join(args.out_dir, "result.json"), json.dumps(result, indent=2) + "\n")
    md = ["# Shapes training result", "", "| key | value |", "|---|---|"]
    md += [f"| {k} | `{v}` |" for k, v in result.items()]
    write_text_atomic(os.path.join(args.out_dir, "result.md"), "\n".join(md) + "\n")
    print(f"mAP@0.5 = {mean_ap:.4f} on {len(aps)} held-out shapes images "
          f"({args.backbone}, {args.epochs}x{args.steps} steps, batch {args.batch}); "
          f"wrote {os.path.join(args.out_dir, 'result.json')}")
    return result


if __name__ == "__main__":
    main()
