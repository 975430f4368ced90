"""Building the two networks of the pipeline (detector and inpainter) with clear errors.

Keras / TensorFlow / mrcnn / inpaint are imported lazily: importing this module is cheap, and
``GoneMaskRCNNConfig`` is created on first access (module ``__getattr__``).
"""
from __future__ import annotations

import pathlib
import tempfile


class ModelLoadError(Exception):
    """A weight file or checkpoint is missing, unreadable, or of the wrong kind."""


# The detector's score threshold (Matterport's COCO inference config, samples/coco/coco.py:
# DETECTION_MIN_CONFIDENCE = 0.7). It is set once, on the detector's config, as torchvision sets
# ``box_score_thresh`` once on its ROI heads; ``gone remove --min-score`` changes it there.
DEFAULT_MIN_SCORE = 0.7


_CONFIG_CLASS = None


def _make_config_class():
    global _CONFIG_CLASS
    if _CONFIG_CLASS is None:
        from mrcnn.config import Config

        class GoneMaskRCNNConfig(Config):
            """Matterport's COCO inference configuration (samples/coco/coco.py ``CocoConfig`` with
            GPU_COUNT 1, IMAGES_PER_GPU 1 as in samples/demo.ipynb)."""
            NAME = "coco"
            NUM_CLASSES = 1 + 80
            GPU_COUNT = 1
            IMAGES_PER_GPU = 1
            DETECTION_MIN_CONFIDENCE = DEFAULT_MIN_SCORE

        _CONFIG_CLASS = GoneMaskRCNNConfig
    return _CONFIG_CLASS


def __getattr__(name):
    if name == "GoneMaskRCNNConfig":
        return _make_config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Detector input presets (``gone remove --detector-size/--detector-resize/--fast``).
DETECTOR_SIZE = 1024          # Matterport's IMAGE_MAX_DIM (full fidelity)
FAST_DETECTOR_SIZE = 640      # --fast
DETECTOR_RESIZE_MODES = ("square", "fit")


def make_detector_config(images_per_gpu=1, detection_min_confidence=DEFAULT_MIN_SCORE, image_max_dim=DETECTOR_SIZE,
                         resize_mode="square"):
    """An instance of GoneMaskRCNNConfig, optionally with a larger batch (IMAGES_PER_GPU), another
    IMAGE_MAX_DIM (a multiple of 64; IMAGE_MIN_DIM becomes min(800, it)) or IMAGE_RESIZE_MODE
    "fit" (mrcnn.config: square's scale without square's padding). The defaults are Matterport's
    COCO inference config."""
    base = _make_config_class()
    image_max_dim = int(image_max_dim)
    if image_max_dim < 64 or image_max_dim % 64:
        raise ValueError(f"detector size must be a positive multiple of 64, got {image_max_dim}")
    if resize_mode not in DETECTOR_RESIZE_MODES:
        raise ValueError(f"detector resize mode must be one of {DETECTOR_RESIZE_MODES}, got {resize_mode!r}")
    detection_min_confidence = float(detection_min_confidence)
    if not 0.0 <= detection_min_confidence <= 1.0:
        raise ValueError(f"detection score threshold must be in [0, 1], got {detection_min_confidence}")
    attrs = {}
    if images_per_gpu != 1:
        attrs["IMAGES_PER_GPU"] = int(images_per_gpu)
    if detection_min_confidence != base.DETECTION_MIN_CONFIDENCE:
        attrs["DETECTION_MIN_CONFIDENCE"] = detection_min_confidence
    if image_max_dim != DETECTOR_SIZE:
        attrs.update(IMAGE_MAX_DIM=image_max_dim, IMAGE_MIN_DIM=min(800, image_max_dim))
    if resize_mode != "square":
        attrs["IMAGE_RESIZE_MODE"] = resize_mode
    if not attrs:
        return base()
    return type("GoneMaskRCNNConfig", (base,), attrs)()


def matterport_weighted_layers(backbone="resnet101"):
    """Names of the layers with weights in Matterport's inference MaskRCNN (COCO config), as the
    groups of mask_rcnn_coco.h5: 233 for ResNet-101 (208 backbone, 8 FPN, rpn_model, 16 heads;
    Matterport's model.py resnet_graph / build_rpn_model / fpn_classifier_graph /
    build_fpn_mask_graph)."""
    blocks = {2: 3, 3: 4, 4: {"resnet50": 6, "resnet101": 23}[backbone], 5: 3}
    names = ["conv1", "bn_conv1"]
    for stage, n in blocks.items():
        for i in range(n):
            block = chr(ord("a") + i)
            for branch in ("2a", "2b", "2c") + (("1",) if block == "a" else ()):
                names += [f"res{stage}{block}_branch{branch}", f"bn{stage}{block}_branch{branch}"]
    names += ["fpn_c5p5", "fpn_c4p4", "fpn_c3p3", "fpn_c2p2", "fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5",
              "rpn_model"]
    names += ["mrcnn_class_conv1", "mrcnn_class_bn1", "mrcnn_class_conv2", "mrcnn_class_bn2",
              "mrcnn_class_logits", "mrcnn_bbox_fc"]
    names += [f"mrcnn_mask_{k}{i}" for i in range(1, 5) for k in ("conv", "bn")]
    names += ["mrcnn_mask_deconv", "mrcnn_mask"]
    return names


def _h5_layers_with_weights(path):
    import h5py

    def names(attr):
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in list(attr)]
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        listed = names(root.attrs["layer_names"]) if "layer_names" in root.attrs else list(root.keys())
        found = []
        for name in listed:
            group = root.get(name)
            if group is None or not hasattr(group, "attrs"):
                continue
            weight_names = group.attrs.get("weight_names")
            if weight_names is not None and len(weight_names):
                found.append(name)
        return found, set(root.keys())


def check_detector_weights(weights_path, allow_partial=False):
    """Check a Mask R-CNN weight file without building any model: an HDF5 file in Matterport's
    layout holding every weighted layer of the COCO inference model. Raises ModelLoadError naming
    what is wrong; a file missing layers is accepted only with ``allow_partial`` (those layers then
    keep random weights). Returns the list of missing layer names."""
    if weights_path is None:
        from gone.weights import manual_instructions
        raise ModelLoadError("no Mask R-CNN weights given and none cached; "
                             + manual_instructions("mask_rcnn_coco"))
    path = pathlib.Path(weights_path)
    if not path.is_file():
        raise ModelLoadError(f"Mask R-CNN weights not found: {path}")
    import h5py
    if not h5py.is_hdf5(path):
        raise ModelLoadError(f"{path} is not an HDF5 file; expected Matterport's mask_rcnn_coco.h5 format")
    try:
        found, keys = _h5_layers_with_weights(path)
    except (OSError, KeyError, ValueError) as e:
        raise ModelLoadError(f"cannot read {path}: {e}") from None
    if "conv1" not in keys or not any(n.startswith("mrcnn_") for n in keys):
        raise ModelLoadError(f"{path} does not look like Mask R-CNN weights (no 'conv1' / 'mrcnn_*' groups)")
    expected = matterport_weighted_layers()
    have = set(found)
    missing = [n for n in expected if n not in have]
    if missing and not allow_partial:
        shown = ", ".join(missing[:6]) + (f", ... ({len(missing) - 6} more)" if len(missing) > 6 else "")
        raise ModelLoadError(f"{path} lacks weights for {len(missing)} of the detector's {len(expected)} "
                             f"layers ({shown}); those layers would stay untrained. Pass "
                             f"--allow-partial-weights (allow_partial=True) to use it anyway")
    return missing


def check_inpainter_checkpoint(checkpoint):
    """Check a DeepFill v1 checkpoint (TF1 folder / snap-N prefix / native .npz) without building
    the network: it must exist, list the generator's ``inpaint_net/*`` variables, and every tensor
    must read back whole (a TF checkpoint's per-tensor crc32c from its .index, a native file's zip
    CRC) and finite. The generator is about 14 MB, so reading it here costs little and lets a damaged
    file be refused before anything is created or any worker starts."""
    if checkpoint is None:
        from gone.weights import manual_instructions
        raise ModelLoadError("no inpainting checkpoint given and none cached; "
                             + manual_instructions("deepfill_v1_places2"))
    path = pathlib.Path(checkpoint)
    prefix_ok = path.parent.is_dir() and any(path.parent.glob(path.name + ".index"))
    if not path.exists() and not prefix_ok:
        raise ModelLoadError(f"inpainting checkpoint not found: {path}")
    if path.is_dir() and not any(path.iterdir()):
        raise ModelLoadError(f"{path} is an empty folder, not a checkpoint")
    from inpaint.checkpoint import read_checkpoint
    try:
        names = read_checkpoint(path)
    except Exception as e:
        raise ModelLoadError(f"cannot read inpainting checkpoint {path}: {e}") from None
    if not any(n.startswith("inpaint_net/") for n in names):
        raise ModelLoadError(f"{path} has no DeepFill v1 generator variables (inpaint_net/*); "
                             f"{len(names)} other variables")


def load_detector(weights_path, images_per_gpu=1, detection_min_confidence=DEFAULT_MIN_SCORE, model_dir=None,
                  allow_partial=False, image_max_dim=DETECTOR_SIZE, resize_mode="square", checked=False):
    """Matterport-compatible ``MaskRCNN`` in inference mode with the COCO config, weights loaded
    by layer name from a Keras-2 HDF5 file (e.g. mask_rcnn_coco.h5). The file is checked first
    (``check_detector_weights``): one missing layers is refused unless ``allow_partial``.
    ``image_max_dim`` / ``resize_mode``: the detector's input size and padding
    (``make_detector_config``; 1024 / "square" = full fidelity). ``detection_min_confidence``: the
    score threshold, set on the config (DETECTION_MIN_CONFIDENCE). ``checked``: the caller already
    ran ``check_detector_weights`` on this file (the check runs once)."""
    path = pathlib.Path(weights_path) if weights_path is not None else None
    if not checked:
        check_detector_weights(path, allow_partial=allow_partial)
    config = make_detector_config(images_per_gpu, detection_min_confidence, image_max_dim, resize_mode)
    return build_maskrcnn(config, path, allow_partial=allow_partial, model_dir=model_dir)


def build_maskrcnn(config, path, allow_partial=False, model_dir=None):
    """The heavy step of ``load_detector``: Keras builds ``mrcnn.model.MaskRCNN`` in inference mode
    with ``config`` and loads the (already checked) weights by layer name."""
    from gone.quiet import import_backend_quietly
    import_backend_quietly()
    try:
        from mrcnn.model import MaskRCNN
    except ImportError as e:
        raise ModelLoadError(f"the mrcnn package is not available: {e}") from None
    model_dir = model_dir or tempfile.mkdtemp(prefix="gone_mrcnn_")
    model = MaskRCNN(mode="inference", config=config, model_dir=str(model_dir))
    try:
        model.load_weights(str(path), by_name=True, allow_partial=bool(allow_partial))
    except Exception as e:  # keep the message, not the traceback
        raise ModelLoadError(f"cannot load Mask R-CNN weights from {path}: {type(e).__name__}: {e}") from None
    return model


def load_inpainter(checkpoint, checked=False):
    """DeepFill v1 ``InpaintModel`` from Yu's TF1 checkpoint folder / ``snap-N`` prefix or a native
    file; ``checked``: the caller already ran ``check_inpainter_checkpoint`` (it runs once)."""
    if not checked:
        check_inpainter_checkpoint(checkpoint)
    return build_deepfill(pathlib.Path(checkpoint))


def build_deepfill(path):
    """The heavy step of ``load_inpainter``: Keras builds DeepFill v1 and reads the (already
    checked) checkpoint ``path``."""
    from gone.quiet import import_backend_quietly
    import_backend_quietly()
    try:
        from inpaint import InpaintModel
    except ImportError as e:
        raise ModelLoadError(f"the inpaint package is not available: {e}") from None
    try:
        return InpaintModel.from_checkpoint(str(path))
    except Exception as e:
        raise ModelLoadError(f"cannot load inpainting checkpoint {path}: {type(e).__name__}: {e}") from None


def check_lama_weights(path):
    """Check LaMa weights (best.ckpt, a big-lama/ folder, the converted .npz or the
    make_weights.py --npz form) without building the network: ``lama``'s safe reader reads every
    generator tensor (refusing a file that is not a checkpoint, is truncated, misses generator
    keys or holds NaN/Inf) and the generator settings come from config.yaml or the shapes."""
    if path is None:
        raise ModelLoadError("no LaMa weights given and none cached; run `gone weights --download big-lama` "
                             "or pass --lama-weights PATH")
    path = pathlib.Path(path)
    if not path.exists():
        raise ModelLoadError(f"LaMa weights not found: {path}")
    try:
        from lama import CheckpointError, LamaConfigError
        from lama.inpainter import infer_config, read_weights
    except ImportError as e:
        raise ModelLoadError(f"the lama package is not available: {e}") from None
    try:
        state, config, _ = read_weights(path)
        if config is None:
            infer_config(state)
    except (CheckpointError, LamaConfigError) as e:
        raise ModelLoadError(f"unusable LaMa weights: {e}") from None
    except OSError as e:
        raise ModelLoadError(f"cannot read LaMa weights {path}: {e.strerror or e}") from None


def load_lama(path, precision="float32", checked=False):
    """``lama.LamaInpainter`` from LaMa weights ``path`` (see ``check_lama_weights``, run first
    unless ``checked``)."""
    if not checked:
        check_lama_weights(path)
    from gone.quiet import import_backend_quietly
    import_backend_quietly()
    from lama import CheckpointError, LamaConfigError, LamaInpainter
    try:
        return LamaInpainter.from_checkpoint(str(path), precision=precision)
    except (CheckpointError, LamaConfigError, ValueError) as e:
        raise ModelLoadError(f"cannot load LaMa weights {path}: {e}") from None
