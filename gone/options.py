"""The options of ``gone remove`` / ``gone inpaint`` / ``python -m gone.beam``, their validation and
the models they build.

- Every value is parsed and bounded once, by argparse, when the command line is read (``type=``
  functions below): a bad value is one line naming the option and the reason, exit 2, never a
  traceback or a failure per image later. ``--dilation`` is parsed here only
  (``gone.masks.parse_dilation``); ``--classes`` becomes a tuple of names/ids (None = all).
- ``validate_remove_args`` fills the speed options (``--fast``) and checks what depends on the
  file system (``--masks DIR``).
- ``check_setup`` checks, before anything is created, that the weight files a run needs are
  there and well-formed (each once), naming the offline alternatives when they are not;
  ``build_remover`` / ``build_inpainter`` then build the models from what it found.

No Keras / TensorFlow is imported here (only when models are built).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib

from gone.inpainters import INPAINTER_KINDS
from gone.models import DEFAULT_MIN_SCORE, DETECTOR_RESIZE_MODES, DETECTOR_SIZE, FAST_DETECTOR_SIZE

# Bounds of the numeric options (the reason goes into the error message).
MAX_DETECTOR_SIZE = 2048      # Mask R-CNN's activations grow with the square of IMAGE_MAX_DIM
MAX_WORKING_SIZE = 2048       # DeepFill's attention matrix grows with the 4th power of the side
MAX_BATCH_SIZE = 256
WORKING_SIZE, FAST_WORKING_SIZE = 512, 256

# --fast preset: (option, full-fidelity default, fast value)
# (working size None = the inpainter's own: 512 for DeepFill and the classical kinds, 2048 for LaMa;
# gone.pipeline.REGION_DEFAULTS, gone.inpainters.LAMA_REGION)
SPEED_PRESET = (("working_size", None, FAST_WORKING_SIZE),
                ("detector_size", DETECTOR_SIZE, FAST_DETECTOR_SIZE),
                ("detector_resize", "square", "fit"))


# -- parse-time types ---------------------------------------------------------------------------------
def _number(text, kind):
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def multiple_in(low, high, multiple, why):
    """argparse type: an integer multiple of ``multiple`` in [low, high]; ``why`` says why high."""
    def parse(text):
        value = _number(text, int)
        if value < low or value % multiple:
            raise argparse.ArgumentTypeError(f"must be a positive multiple of {multiple}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{value} is above the limit {high}: {why}")
        return value
    return parse


def int_in(low, high, why=""):
    def parse(text):
        value = _number(text, int)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}" + (f" ({why})" if why else ""))
        return value
    return parse


def float_in(low, high, low_open=False):
    def parse(text):
        value = _number(text, float)
        if value < low or value > high or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be in {'(' if low_open else '['}{low:g}, {high:g}], got {text}")
        return value
    return parse


def dilation_arg(text):
    """--dilation: pixels ('15', '15px') or a fraction of the instance size ('0.05', '5%'),
    parsed and bounded by ``gone.masks.parse_dilation``."""
    from gone.masks import parse_dilation
    try:
        return parse_dilation(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def classes_arg(text):
    """--classes: comma-separated COCO names or ids 1-80 -> tuple; 'all' / '*' -> None."""
    from gone.masks import class_ids_for, coco_class_names
    if text.strip().lower() in ("all", "*"):
        return None
    classes = tuple(int(c) if c.isdigit() else c for c in (c.strip() for c in text.split(",")) if c)
    if not classes:
        raise argparse.ArgumentTypeError(f"{text!r} names no class; give COCO class names or ids, or 'all'")
    n = len(coco_class_names())
    try:
        ids = class_ids_for(classes)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    for ident in sorted(ids):
        if not 1 <= ident < n:
            raise argparse.ArgumentTypeError(f"unknown class id {ident}; COCO ids are 1..{n - 1} (0 is the background)")
    return classes


def parse_classes(text):
    """``classes_arg`` for callers outside argparse (ValueError)."""
    try:
        return classes_arg(text)
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None


# -- the options ---------------------------------------------------------------------------------
def add_inpainter_option(parser):
    parser.add_argument("--inpainter", choices=INPAINTER_KINDS, default="auto",
                        help="what fills the hole: auto = LaMa when its weights are given or cached, else "
                             "DeepFill v1 when its checkpoint is given or cached, else PatchMatch; "
                             "deepfill-random = untrained DeepFill (plumbing tests only) (default: auto)")
    parser.add_argument("--lama-weights", default=None, metavar="PATH",
                        help="LaMa weights: best.ckpt, a big-lama/ folder or the converted .npz, for "
                             "--inpainter lama or auto (default: the cached big-lama, `gone weights "
                             "--download big-lama`)")


def working_size_arg():
    return multiple_in(8, MAX_WORKING_SIZE, 8, "DeepFill's attention memory grows with the 4th power of "
                       "the region side, LaMa generalises to about 2k px; larger regions are downscaled "
                       "to this size anyway")


def add_remove_options(parser):
    """Every ``gone remove`` option except the inputs and ``-o`` on ``parser`` (so that
    ``python -m gone.beam`` takes the same options with its own --input/--output)."""
    from gone.masks import STRATEGIES
    from gone.pipeline import LARGE_CROP_POLICIES
    parser.add_argument("--strategy", choices=STRATEGIES, default="dilated", help="hole shape (default: dilated)")
    parser.add_argument("--dilation", default=None, type=dilation_arg,
                        help="dilated strategy radius, >= 0: pixels ('15', '15px', at most 4096) or fraction "
                             "of the instance size ('0.05', '5%%'); default 0.05")
    parser.add_argument("--classes", default=("person",), type=classes_arg,
                        help="comma-separated COCO class names or ids 1-80 to remove (default: person; "
                             "'all' = every class)")
    parser.add_argument("--min-score", type=float_in(0.0, 1.0), default=DEFAULT_MIN_SCORE,
                        help="minimum detection score, the detector's threshold (Matterport's "
                             "DETECTION_MIN_CONFIDENCE)")
    parser.add_argument("--mrcnn-weights", default=None, help="Mask R-CNN .h5 (default: the cached mask_rcnn_coco.h5)")
    parser.add_argument("--allow-partial-weights", action="store_true",
                        help="accept a Mask R-CNN weight file that lacks some of the model's layers (they stay "
                             "untrained); refused by default")
    parser.add_argument("--inpaint-checkpoint", default=None,
                        help="DeepFill v1 checkpoint folder or prefix (default: the cached release_places2_256)")
    add_inpainter_option(parser)
    parser.add_argument("--masks", default=None, metavar="DIR",
                        help="use the hole masks in DIR instead of detecting (DIR/<stem>.<ext> or "
                             "<stem>_mask.<ext>, white = hole); no Mask R-CNN needed (default: none, "
                             "detect with Mask R-CNN)")
    parser.add_argument("--large-crop", choices=LARGE_CROP_POLICIES, default="warn",
                        help="what to do when the hole covers > 50%% of an image (default: warn)")
    parser.add_argument("--working-size", type=working_size_arg(), default=None,
                        help=f"largest region side fed to the inpainter, a multiple of 8 up to {MAX_WORKING_SIZE} "
                             f"(default: the inpainter's, {WORKING_SIZE} for DeepFill and the classical ones, "
                             f"2048 for LaMa; {FAST_WORKING_SIZE} with --fast)")
    parser.add_argument("--detector-size", default=None, metavar="N", type=multiple_in(
        64, MAX_DETECTOR_SIZE, 64, "Mask R-CNN's memory grows with the square of its input size"),
        help=f"Mask R-CNN input size, IMAGE_MAX_DIM, a multiple of 64 up to {MAX_DETECTOR_SIZE} (default "
             f"{DETECTOR_SIZE}, Matterport's; {FAST_DETECTOR_SIZE} with --fast)")
    parser.add_argument("--detector-resize", choices=DETECTOR_RESIZE_MODES, default=None,
                        help="square = Matterport's padding to N x N; fit = the same scale padded only "
                             "to multiples of 64, ~40%% less detection time on a 16:9 photo, detections "
                             "close to square's (default: square; fit with --fast)")
    parser.add_argument("--fast", action="store_true",
                        help="speed preset: --detector-size 640 --detector-resize fit --working-size 256 "
                             "(options given explicitly win); smaller people are missed more often, "
                             "see docs/benchmarks/end_to_end.md (default: off, full fidelity)")
    parser.add_argument("--batch-size", type=int_in(1, MAX_BATCH_SIZE, "more per call only adds memory"),
                        default=1, help="images per detector / regions per inpainter call")
    parser.add_argument("--save-masks", action="store_true", help="also write <stem>_mask.png (255 = hole)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs this program wrote (never an input, never a file "
                             "it did not write)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file notes")
    return parser


def add_inpaint_options(parser):
    """``gone inpaint``: Yu et al.'s test.py flags (--image --mask --output --checkpoint_dir)."""
    parser.add_argument("--image", required=True, help="input image, or a folder of images")
    parser.add_argument("--mask", required=True,
                        help="hole mask (white = hole), or a folder of masks matched by file stem "
                             "(<stem>.<ext> or <stem>_mask.<ext>)")
    parser.add_argument("--output", required=True, help="output image file, or a folder for the folder form")
    parser.add_argument("--checkpoint_dir", "--checkpoint-dir", dest="checkpoint_dir", default=None,
                        help="DeepFill v1 checkpoint (default: the cached release_places2_256)")
    add_inpainter_option(parser)
    parser.add_argument("--working-size", type=working_size_arg(), default=None,
                        help=f"largest region side fed to the inpainter (default: the inpainter's, {WORKING_SIZE} "
                             f"for DeepFill and the classical ones, 2048 for LaMa)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs this program wrote (never an input)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file notes")
    return parser


def apply_speed_preset(args):
    """Fill the speed options the user left unset: full fidelity, or ``--fast``'s values."""
    fast = bool(getattr(args, "fast", False))
    for name, full, quick in SPEED_PRESET:
        if getattr(args, name, None) is None:
            setattr(args, name, quick if fast else full)
    return args


def check_output_folder(path, option):
    """ValueError (one line) when the output folder ``path`` exists but is not a folder."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: exists and is not a folder; name an output folder")


def validate_remove_args(args):
    """Fill the speed options (``apply_speed_preset``) and check what the parser cannot (the
    ``--masks`` folder); raises ValueError (one line). The values themselves were bounded when
    parsed."""
    apply_speed_preset(args)
    if getattr(args, "outdir", None):   # gone remove (Beam's --output is checked when it is created)
        check_output_folder(args.outdir, "-o")
    masks = getattr(args, "masks", None)
    if masks is not None and getattr(args, "keep", "none") != "none":
        raise ValueError("--keep subject needs the detections; it cannot be used with --masks")
    if masks is not None and not pathlib.Path(masks).is_dir():
        raise ValueError(f"--masks {masks}: not a folder")
    return args


# -- setup and models -----------------------------------------------------------------------------
class SetupError(Exception):
    """The weights a run needs are missing or unusable (one line; exit 2)."""


OFFLINE_ALTERNATIVES = ("without them, `gone remove ... --masks DIR` removes the holes of your own masks "
                        "(no detector), and `gone inpaint --image IMG --mask MASK --output OUT` fills one "
                        "hole; both work offline with PatchMatch")


@dataclasses.dataclass
class Setup:
    """What ``check_setup`` found: the checked Mask R-CNN weights (None: no detector needed) and
    the inpainter kind and checkpoint to build."""
    mrcnn_weights: object = None
    inpainter: str = "auto"
    checkpoint: object = None
    lama_weights: object = None


def _is_uri(path):
    return "://" in str(path) and not str(path).startswith("file://")


def check_setup(args, checkpoint=None):
    """Check, before anything is created or built, the weight files that ``args`` need (each
    once): the Mask R-CNN file (unless ``--masks``), the LaMa weights of "lama" (and of "auto" when
    given, or cached and no DeepFill checkpoint is given) and the DeepFill checkpoint of a DeepFill
    kind. Non-local paths (gs://...) are left to the workers. Raises SetupError naming the
    offline alternatives when the detector weights are missing."""
    from gone.inpainters import find_deepfill_checkpoint, patchmatch_available
    from gone.inpainters import find_lama_weights
    from gone.models import ModelLoadError, check_detector_weights, check_inpainter_checkpoint, check_lama_weights
    from gone.weights import find_weight_file, manual_instructions
    setup = Setup(inpainter=getattr(args, "inpainter", "auto") or "auto")
    if not getattr(args, "masks", None) and hasattr(args, "mrcnn_weights"):
        weights = args.mrcnn_weights or find_weight_file("mask_rcnn_coco")
        if weights is None:
            raise SetupError(f"no Mask R-CNN weights given and none cached; {manual_instructions('mask_rcnn_coco')}; "
                             f"{OFFLINE_ALTERNATIVES}")
        if not _is_uri(weights):
            try:
                check_detector_weights(weights, allow_partial=bool(getattr(args, "allow_partial_weights", False)))
            except ModelLoadError as e:
                raise SetupError(str(e)) from None
        setup.mrcnn_weights = weights
    if checkpoint is None:
        checkpoint = getattr(args, "inpaint_checkpoint", None)
    kind = setup.inpainter
    lama = getattr(args, "lama_weights", None)
    if lama is not None and kind not in ("auto", "lama"):
        raise SetupError(f"--lama-weights is for --inpainter lama or auto, not {kind}")
    if kind == "lama" and checkpoint is not None:
        raise SetupError("a DeepFill checkpoint was given but --inpainter lama uses none; give --lama-weights PATH")
    if kind == "lama" or (kind == "auto" and (lama is not None or checkpoint is None)):
        found = lama if lama is not None else find_lama_weights()
        if kind == "lama" and found is None:
            raise SetupError("no LaMa weights given and none cached; run `gone weights --download big-lama` "
                             "or pass --lama-weights PATH")
        if found is not None:
            if not _is_uri(found):
                try:
                    check_lama_weights(found)
                except ModelLoadError as e:
                    raise SetupError(str(e)) from None
            setup.lama_weights = found
            return setup
    if kind in ("auto", "deepfill"):
        found = checkpoint or find_deepfill_checkpoint()
        if kind == "deepfill" and found is None:
            raise SetupError("no DeepFill checkpoint given and none cached; " + manual_instructions("deepfill_v1_places2"))
        if found is not None and not _is_uri(found):
            try:
                check_inpainter_checkpoint(found)
            except ModelLoadError as e:
                raise SetupError(str(e)) from None
        setup.checkpoint = found
    elif kind == "patchmatch" and not patchmatch_available():   # the other kinds ignore a checkpoint
        raise SetupError("PatchMatch needs the PyPatchMatch package (pip install pypatchmatch), or use --inpainter telea")
    return setup


def build_inpainter(kind="auto", checkpoint=None, setup=None, lama_weights=None):
    """The inpainter for ``--inpainter kind`` (``gone.inpainters.make_inpainter``, one hop), its
    checkpoint checked once (by ``check_setup`` unless ``setup`` is given)."""
    from gone.inpainters import make_inpainter
    if setup is None:
        setup = check_setup(argparse.Namespace(inpainter=kind, inpaint_checkpoint=checkpoint,
                                               lama_weights=lama_weights))
    if setup.inpainter == "deepfill-random":
        from gone.quiet import import_backend_quietly
        import_backend_quietly()
    if setup.lama_weights is not None:   # checked; "auto" with LaMa weights builds LaMa
        return make_inpainter(setup.inpainter, lama_weights=setup.lama_weights, checked=True)
    return make_inpainter(setup.inpainter, checkpoint=setup.checkpoint, checked=True)


def build_remover(args, setup=None):
    """The real models for ``gone remove`` options ``args`` (lazy imports), from ``setup`` (by
    default ``check_setup(args)``: every weight file checked once, before any model is built)."""
    from gone.models import load_detector
    from gone.pipeline import PeopleRemover
    apply_speed_preset(args)
    setup = setup or check_setup(args)
    inpainter = build_inpainter(setup=setup)
    detector = None
    if setup.mrcnn_weights is not None:   # the score threshold is set once, on the detector's config
        detector = load_detector(setup.mrcnn_weights, images_per_gpu=args.batch_size,
                                 allow_partial=bool(getattr(args, "allow_partial_weights", False)),
                                 image_max_dim=args.detector_size, resize_mode=args.detector_resize,
                                 detection_min_confidence=args.min_score, checked=True)
    return PeopleRemover(detector, inpainter, strategy=args.strategy, dilation=args.dilation,
                         classes=args.classes, large_crop=args.large_crop, working_size=args.working_size,
                         batch_size=args.batch_size)
