"""Mask R-CNN training throughput (images/s): SGD steps of the full training graph
(RPN + proposals + detection targets + heads + the five losses + weight decay) on shapes images.

The data batches are prepared before timing (the data generator's own rate is printed apart),
the first --warmup steps (tracing / compilation) are excluded.

    # GPU, Matterport's COCO setting (1024x1024, ResNet-101, 2 images per step):
    KERAS_BACKEND=jax python benchmarks/mrcnn_training.py --backbone resnet101 --image-size 1024 --batch 2
    # CPU smoke run:
    python benchmarks/mrcnn_training.py --backbone small --image-size 128 --batch 2 --steps 5 --warmup 1
"""
import argparse
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description="Mask R-CNN training images/s")
    p.add_argument("--backbone", default="resnet101", choices=["resnet50", "resnet101", "small"])
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--num-classes", type=int, default=None,
                   help="incl. background (default: the shapes dataset's 4; the data must have as many)")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    p.add_argument("--layers", default="all", help="heads, 3+, 4+, 5+ or all")
    args = p.parse_args(argv)
    if args.image_size % 64:
        p.error("--image-size must be a multiple of 64")

    import keras

    from mrcnn import training
    from mrcnn.config import Config
    from mrcnn.data_generator import DataGenerator
    from mrcnn.datasets.shapes import ShapesDataset

    dataset = ShapesDataset()
    dataset.load_shapes(max(8, args.batch * 2), args.image_size, args.image_size, seed=0,
                        buffer=min(20, args.image_size // 4))
    dataset.prepare()
    args.num_classes = args.num_classes or dataset.num_classes
    fields = dict(NAME="bench", NUM_CLASSES=args.num_classes, IMAGES_PER_GPU=args.batch,
                  IMAGE_MIN_DIM=args.image_size, IMAGE_MAX_DIM=args.image_size)
    if args.backbone == "small":
        backbone, shapes = training.small_backbone()
        fields.update(BACKBONE=backbone, COMPUTE_BACKBONE_SHAPE=shapes)
    else:
        fields["BACKBONE"] = args.backbone
    if args.image_size < 512:  # anchors of the shapes notebook for small images
        fields["RPN_ANCHOR_SCALES"] = (8, 16, 32, 64, 128)
    config = Config(**fields)
    generator = DataGenerator(dataset, config, shuffle=True, seed=0, steps_per_epoch=4)
    t = time.time()
    batches = [generator[i][0] for i in range(len(generator))]
    data_rate = len(batches) * args.batch / (time.time() - t)

    t = time.time()
    model = training.build_training_model(config)
    build_s = time.time() - t
    training.set_trainable(model, training.LAYER_REGEX.get(args.layers, args.layers))
    training.compile_training_model(model, config, learning_rate=0.001, momentum=config.LEARNING_MOMENTUM)

    times = []
    for step in range(args.warmup + args.steps):
        batch = batches[step % len(batches)]
        t = time.time()
        logs = model.train_on_batch(list(batch), return_dict=True)
        float(logs["loss"])  # block until the step is done
        times.append(time.time() - t)
    timed = np.array(times[args.warmup:])
    rate = args.batch * len(timed) / timed.sum()
    print(f"backend={keras.backend.backend()} backbone={args.backbone} image={args.image_size} "
          f"batch={args.batch} classes={args.num_classes} layers={args.layers}")
    print(f"build {build_s:.1f} s, first step {times[0]:.1f} s, step median {np.median(timed):.3f} s")
    print(f"training: {rate:.2f} images/s ({len(timed)} timed steps); "
          f"data generator alone: {data_rate:.1f} images/s (1 process); last loss {float(logs['loss']):.3f}")
    return rate


if __name__ == "__main__":
    main()
