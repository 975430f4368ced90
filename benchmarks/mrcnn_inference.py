#!/usr/bin/env python
"""Mask R-CNN inference throughput (images/s), 1024x1024 inputs, COCO config, ResNet-101.

Three figures per batch size:
  network                forward pass + class-selected 28x28 masks fetched to the host
  + pasted on device     plus full-size masks pasted with keras.ops on the accelerator
  + pasted with numpy    plus Matterport's faithful numpy unmold (skimage resize, CPU)
The network is timed (warmup, then --iters batches); each paste is timed on the network's
outputs and its time per batch is added to the network's.

DETECTION_MIN_CONFIDENCE defaults to 0 so that every image has DETECTION_MAX_INSTANCES (100)
detections: the worst case for mask pasting. Random weights unless --weights is given.

    KERAS_BACKEND=jax python benchmarks/mrcnn_inference.py --batch-sizes 1 8 --iters 20
"""
import argparse
import os
import sys
import time

import numpy as np

# peer (torchvision Mask R-CNN R101-FPN, 1024^2, batch 8, fp32, one H200)
PEER = {"network (28x28 masks)": 69.0, "masks pasted to full size on CPU": 22.0}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--iters", type=int, default=10, help="timed batches per figure")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches (compilation) per figure")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--backbone", default="resnet101", choices=["resnet50", "resnet101"])
    p.add_argument("--weights", default=None, help="optional weight file (mask_rcnn_coco.h5 layout)")
    p.add_argument("--min-confidence", type=float, default=0.0)
    p.add_argument("--skip-numpy", action="store_true", help="skip the (slow) numpy paste figure")
    return p.parse_args()


def print_peer():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        print("peer (torchvision) not importable here; published peer figures on an H200, batch 8:")
    else:
        print("torchvision importable; peer figures measured on an H200, batch 8 (not re-run here):")
    for k, v in PEER.items():
        print(f"  torchvision Mask R-CNN R101-FPN, {k}: {v:.0f} images/s")


def main():
    args = parse_args()
    import keras
    from keras import ops

    from mrcnn import transform
    from mrcnn.config import Config
    from mrcnn.model import MaskRCNN, _unmold_boxes, paste_masks

    print(f"backend {keras.backend.backend()}, keras {keras.__version__}, python {sys.version.split()[0]}, "
          f"cpus {os.cpu_count()}")
    print_peer()
    rng = np.random.default_rng(0)
    for bs in args.batch_sizes:
        config = Config(NAME="bench", NUM_CLASSES=81, GPU_COUNT=1, IMAGES_PER_GPU=bs,
                        BACKBONE=args.backbone, IMAGE_MIN_DIM=args.size, IMAGE_MAX_DIM=args.size,
                        DETECTION_MIN_CONFIDENCE=args.min_confidence)
        t0 = time.perf_counter()
        model = MaskRCNN("inference", config, model_dir=None)
        if args.weights:
            model.load_weights(args.weights, by_name=True)
        print(f"\nbatch {bs}: model built in {time.perf_counter() - t0:.1f} s")
        images = rng.integers(0, 255, (bs, args.size, args.size, 3), dtype=np.uint8)
        molded, metas, windows = transform.mold_inputs(list(images), config)
        anchors = np.broadcast_to(transform.get_anchors(config, molded.shape[1:]),
                                  (bs,) + transform.get_anchors(config, molded.shape[1:]).shape)
        shape = images.shape[1:]

        def network():
            return model._predict(molded, metas, anchors)

        def paste_device(det, masks):
            out = []
            for j in range(bs):
                n = int((det[j, :, 4] > 0).sum())
                rois, _, _, keep = _unmold_boxes(det[j, :n], shape, molded.shape[1:], windows[j])
                out.append(ops.convert_to_numpy(paste_masks(masks[j, :n][keep], rois, shape[0], shape[1])))
            return out

        def paste_numpy(det, masks):
            k = config.NUM_CLASSES
            return [transform.unmold_detections(det[j], np.broadcast_to(masks[j][..., None], masks[j].shape + (k,)),
                                                shape, molded.shape[1:], windows[j]) for j in range(bs)]

        def timed(fn, *a):
            for _ in range(args.warmup):
                out = fn(*a)
            t = time.perf_counter()
            for _ in range(args.iters):
                out = fn(*a)
            return (time.perf_counter() - t) / args.iters, out

        # The network is timed once; the pastes are timed on its outputs and added to it.
        t_net, (det, masks) = timed(network)
        rows = [("network (28x28 masks)", t_net)]
        t_dev, _ = timed(paste_device, det, masks)
        rows.append(("network + full-size masks pasted on device", t_net + t_dev))
        if not args.skip_numpy:
            t_np, _ = timed(paste_numpy, det, masks)
            rows.append(("network + full-size masks pasted with numpy", t_net + t_np))
        for name, dt in rows:
            print(f"  {name:44s} {bs / dt:8.2f} images/s  ({dt:.3f} s/batch)", flush=True)
        n_det = int((det[:, :, 4] > 0).sum(axis=1).mean())
        print(f"  detections per image: {n_det}")
        del model
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
