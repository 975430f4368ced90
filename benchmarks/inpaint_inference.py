"""DeepFill v1 inference throughput (images/s) at 256^2, 512^2 and 1024^2.

    python benchmarks/inpaint_inference.py                       # defaults below
    KERAS_BACKEND=jax python benchmarks/inpaint_inference.py --sizes 256 512 1024 --batch-sizes 16 8 2

Times the compiled generator call that `InpaintModel` uses (float32 inputs in, x2 out, host<->device
copies included) after warm-up; `--end-to-end` times `InpaintModel.inpaint_batch` on RGB uint8 images
instead (validation, padding, compositing included). Weights are random unless --checkpoint is given
(speed does not depend on them). The peer figure to beat (PyTorch DeepFill v1 port on an H200):
422 images/s at 256^2 batch 16, 93 images/s at 512^2 batch 8. Work per image: 51.6 GFLOP at 256^2,
287 at 512^2, 2436 at 1024^2 (attention grows with the square of the pixel count).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _device_info():
    import keras
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return f"jax {jax.__version__} on {', '.join(str(d) for d in jax.devices())}"
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        return f"tensorflow {tf.__version__} on {gpus or 'CPU'}"
    return backend


def _inputs(size, batch, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, (batch, size, size, 3)).astype(np.uint8)
    holes = np.zeros((batch, size, size), bool)
    for i in range(batch):  # a different rectangular hole per image, ~15 % of the area
        t, l_ = rng.randint(0, size // 2, 2)
        holes[i, t:t + int(size * 0.4), l_:l_ + int(size * 0.38)] = True
    return images, holes


def bench(model, size, batch, iters, warmup, end_to_end):
    from inpaint.model import attention_matrix_bytes
    images, holes = _inputs(size, batch)
    if end_to_end:
        run = lambda: model.inpaint_batch(list(images), list(holes), batch_size=batch, crop=False,  # noqa: E731
                                          progress=False)
    else:
        pos = images[..., ::-1].astype(np.float32) / np.float32(127.5) - 1
        m = holes[..., None].astype(np.float32)
        x, fn = pos * (1 - m), model._forward_fn()
        run = lambda: fn(x, m)  # noqa: E731
    t0 = time.perf_counter()
    for _ in range(warmup):
        run()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    best, median = min(times), float(np.median(times))
    mib = attention_matrix_bytes(size, size) / 2 ** 20
    print(f"{size:>5}^2  batch {batch:>3}  {batch / median:9.3f} images/s (median of {iters}; best "
          f"{batch / best:.3f})  warm-up {compile_s:.1f} s  attention matrix {mib:.0f} MiB/image/copy",
          flush=True)
    return batch / median


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 8, 2],
                        help="one per size (the last one repeats)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--checkpoint", default=None, help="TF1 checkpoint or native .npz (default: random)")
    parser.add_argument("--precision", choices=["float32", "tf32", "both"], default="float32",
                        help="float32 = reference numerics (default); tf32 lets NVIDIA GPUs use tensor cores")
    parser.add_argument("--end-to-end", action="store_true", help="time inpaint_batch on uint8 RGB")
    args = parser.parse_args(argv)

    from inpaint import InpaintModel
    precisions = ["float32", "tf32"] if args.precision == "both" else [args.precision]
    for precision in precisions:
        model = (InpaintModel.from_checkpoint(args.checkpoint, precision=precision) if args.checkpoint
                 else InpaintModel(precision=precision))
        print(f"DeepFill v1 inference, {'end-to-end' if args.end_to_end else 'network'}; {_device_info()}; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; precision {precision}",
              flush=True)
        for i, size in enumerate(args.sizes):
            batch = args.batch_sizes[min(i, len(args.batch_sizes) - 1)]
            try:
                bench(model, size, batch, args.iters, args.warmup, args.end_to_end)
            except Exception as exc:  # e.g. out of memory at 1024^2: report and go on
                print(f"{size:>5}^2  batch {batch:>3}  failed: {type(exc).__name__}: {str(exc)[:300]}",
                      flush=True)


if __name__ == "__main__":
    main()
