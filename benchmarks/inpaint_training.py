"""DeepFill v1 training throughput: images/s counted per generator step.

One generator step = CRITIC_STEPS (5) critic updates, each on its own batch with the WGAN-GP
penalty, then one generator update (the original's schedule). images/s = BATCH_SIZE x generator
steps / s. Data are random in-memory images (no disk I/O), masks are the original random bboxes.

    python benchmarks/inpaint_training.py                      # 256x256, batch 16, 5:1
    KERAS_BACKEND=jax python benchmarks/inpaint_training.py    # same on JAX (CPU or CUDA)
    python benchmarks/inpaint_training.py --backends tensorflow,jax   # both, one process each
    python benchmarks/inpaint_training.py --size 128 --batch-size 4 --steps 2   # quick CPU run
    python benchmarks/inpaint_training.py --split-times       # critic / generator step times apart

On a CUDA machine (the H200 target: >= 100 generator-step images/s on JAX):

    pip install -e ".[jax]" "jax[cuda12]" && python benchmarks/inpaint_training.py --backends jax,tensorflow --steps 10
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
from gonefiles.quiet import quiet_backend_import  # noqa: E402

quiet_backend_import()   # TF's environment defaults, a quiet first `import keras`


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="image height = width (multiple of 8)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--critic-steps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed generator steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed generator steps (compilation)")
    parser.add_argument("--pretrain-coarse", action="store_true")
    parser.add_argument("--optimizer", default="shared", choices=("shared", "separate"))
    parser.add_argument("--backends", help="comma-separated backends, each run in its own process "
                                           "(default: the active KERAS_BACKEND only)")
    parser.add_argument("--split-times", action="store_true",
                        help="also time one critic step and one generator step alone")
    args = parser.parse_args(argv)
    if args.backends:
        import subprocess
        given = list(argv if argv is not None else sys.argv[1:])
        rest, skip = [], False
        for arg in given:  # everything but --backends X / --backends=X
            if skip:
                skip = False
            elif arg == "--backends":
                skip = True
            elif not arg.startswith("--backends="):
                rest.append(arg)
        status = 0
        for backend in args.backends.split(","):
            env = dict(os.environ, KERAS_BACKEND=backend.strip())
            status |= subprocess.call([sys.executable, os.path.abspath(__file__), *rest], env=env)
        return status

    import numpy as np
    import keras
    from inpaint.config import InpaintConfig
    from inpaint.trainer import InpaintTrainer

    patch = args.size // 2
    config = InpaintConfig().override(dict(
        IMG_SHAPES=[args.size, args.size, 3], HEIGHT=patch, WIDTH=patch,
        MAX_DELTA_HEIGHT=patch // 4, MAX_DELTA_WIDTH=patch // 4, BATCH_SIZE=args.batch_size,
        CRITIC_STEPS=args.critic_steps, PRETRAIN_COARSE_NETWORK=args.pretrain_coarse))
    rng = np.random.default_rng(0)
    pool = [rng.uniform(0, 255, (args.batch_size, args.size, args.size, 3)).astype(np.float32) for _ in range(4)]
    counter = iter(range(10 ** 9))

    def next_batch():
        return pool[next(counter) % len(pool)]

    with tempfile.TemporaryDirectory() as log_dir:
        trainer = InpaintTrainer(config, log_dir=log_dir, seed=0, snapshot_every=10 ** 9, verbose=0,
                                 optimizer=args.optimizer)

        def run(steps):
            scalars = None
            for _ in range(steps):
                scalars, *_ = trainer.train_step(next_batch)
            # wait for the device: fetching the losses synchronises both backends
            return {k: float(keras.ops.convert_to_numpy(v)) for k, v in scalars.items()}

        start = time.perf_counter()
        run(args.warmup)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        losses = run(args.steps)
        elapsed = time.perf_counter() - start
        split = None
        if args.split_times:
            mask, tl = trainer._sample_mask()
            alphas = trainer._alphas()
            batch = pool[0]

            def timed(fn, repeat=3):
                best = float("inf")
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    out = fn()
                    keras.ops.convert_to_numpy(out[0]["g_loss" if "g_loss" in out[0] else "d_loss"])
                    best = min(best, time.perf_counter() - t0)
                return best
            critic_s = timed(lambda: (trainer.critic_update(batch, mask, tl, *alphas),))
            generator_s = timed(lambda: trainer.generator_update(batch, mask, tl))
            split = (critic_s, generator_s)

    images_per_s = args.batch_size * args.steps / elapsed
    try:
        import jax
        devices = ", ".join(str(d) for d in jax.devices()) if keras.backend.backend() == "jax" else "-"
    except ImportError:
        devices = "-"
    print(f"backend={keras.backend.backend()} devices={devices} size={args.size} batch={args.batch_size} "
          f"critic_steps={args.critic_steps} pretrain_coarse={args.pretrain_coarse}")
    print(f"warmup {args.warmup} step(s): {compile_s:.1f} s (includes compilation)")
    print(f"{args.steps} generator steps in {elapsed:.2f} s: {elapsed / args.steps:.3f} s/step, "
          f"{images_per_s:.2f} training images/s (per generator step)")
    print("last losses: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(losses.items())))
    if split:
        print(f"one critic step {split[0]:.3f} s, one generator step {split[1]:.3f} s (best of 3)")
    cpu = os.cpu_count()
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    print(f"machine: {cpu} CPU cores, load average {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
