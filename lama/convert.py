"""Convert LaMa weights to our native file once (no PyTorch needed).

    python -m lama.convert big-lama/models/best.ckpt big_lama.npz [--config big-lama/config.yaml] [--float16]

SRC: a published `best.ckpt` (PyTorch Lightning zip), a `big-lama/` folder, or the
`make_weights.py --npz` form. Only the generator is kept; its names and shapes are checked against
the generator built from the config (config.yaml when given or beside `models/`, else read off the
shapes). DST is written atomically (a temp file renamed onto it). --float16 halves the file; the
weights are then rounded to float16 (computation stays float32), which the file's manifest states.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from lama.checkpoint import CheckpointError, save_native


def convert(src, dst, config_yaml=None, float16=False):
    """Read SRC, verify it against the generator, write DST (.npz). Returns the manifest."""
    from lama.inpainter import LamaInpainter, config_from_yaml, infer_config, read_weights

    state, config, source = read_weights(src)
    if config_yaml is not None:
        config = config_from_yaml(config_yaml)
    config = config or infer_config(state)
    model = LamaInpainter(config)
    try:
        model.generator.load_torch_state(state)     # refuses missing / unexpected keys, wrong shapes
    except ValueError as e:
        raise CheckpointError(f"{source}: {e}") from None
    keep = {k: v for k, v in state.items() if not k.endswith(".num_batches_tracked")}
    return save_native(dst, keep, config.to_dict(), source=source, float16=float16)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lama.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="best.ckpt, a big-lama/ folder, or a make_weights.py .npz")
    parser.add_argument("dst", help="output .npz")
    parser.add_argument("--config", help="LaMa training config.yaml (its generator section)")
    parser.add_argument("--float16", action="store_true", help="store the weights as float16 (half the size)")
    args = parser.parse_args(argv)
    dst = pathlib.Path(args.dst)
    if dst.is_dir():
        print(f"error: {dst} is a folder; give the output file name", file=sys.stderr)
        return 2
    try:
        manifest = convert(args.src, dst, config_yaml=args.config, float16=args.float16)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot write {dst}: {e.strerror or e}", file=sys.stderr)
        return 1
    cfg = manifest["generator_config"]
    print(f"wrote {dst} (LaMa generator ngf {cfg['NGF']}, {cfg['N_BLOCKS']} blocks, {manifest['stored_dtype']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
