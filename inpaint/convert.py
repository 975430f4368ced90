"""Convert Yu et al.'s TF1 DeepFill v1 checkpoint to our native .npz (no TensorFlow needed).

    python -m inpaint.convert SRC DST.npz [--with-critics] [--config inpaint.yml]

SRC: a checkpoint directory (with its `checkpoint` state file), a `snap-N` prefix or its .index.
By default only the 84 generator variables (`inpaint_net/*`) are written; --with-critics also keeps
`discriminator/*` (for resuming training). The generator names are checked against our model.
"""
from __future__ import annotations

import argparse
import sys


from inpaint.checkpoint import CheckpointError, read_tf_checkpoint, save_native


def convert(src, dst, with_critics=False, config=None):
    """Read SRC (TF bundle), verify the generator names/shapes, write DST (.npz). Returns the names."""
    from inpaint.config import InpaintConfig
    from inpaint.generator import InpaintGenerator
    from inpaint.checkpoint import assign_generator_weights

    variables = read_tf_checkpoint(src)
    config = config or InpaintConfig()
    generator = InpaintGenerator(padding=config.PADDING)
    generator.build()
    assign_generator_weights(generator, variables)  # raises with missing/unexpected names
    keep = {n: v for n, v in variables.items()
            if n.startswith("inpaint_net/") or (with_critics and n.startswith("discriminator/"))}
    keep = {n: v for n, v in keep.items() if not any(s in n for s in ("/Adam", "/Momentum", "/RMSProp"))}
    save_native(dst, keep, config=config.to_dict(), extra={"source": str(src)})
    return sorted(keep)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m inpaint.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="TF checkpoint directory, snap-N prefix or .index file")
    parser.add_argument("dst", help="output .npz")
    parser.add_argument("--with-critics", action="store_true", help="also keep discriminator/* variables")
    parser.add_argument("--config", default=None, help="inpaint.yml to store with the weights")
    args = parser.parse_args(argv)
    if not args.dst.endswith(".npz"):
        parser.error(f"DST must end with .npz, got {args.dst}")
    try:
        from inpaint.config import InpaintConfig
        config = InpaintConfig.from_yaml(args.config) if args.config else None
        names = convert(args.src, args.dst, args.with_critics, config)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: {len(names)} variables")
    return 0


if __name__ == "__main__":
    from gonefiles.quiet import filter_native_stderr

    filter_native_stderr()   # TensorFlow's start-up and run-time notes ("remapper failed", ...)
    sys.exit(main())
