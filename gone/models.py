"""Building the two networks of the pipeline (detector and inpainter) with clear errors.

Keras / TensorFlow / mrcnn / inpaint are imported lazily: importing this module is cheap, and
``GoneMaskRCNNConfig`` is created on first access (module ``__getattr__``).
"""
from __future__ import annotations

import pathlib
import tempfile


class ModelLoadError(Exception):
    """A weight file or checkpoint is missing, unreadable, or of the wrong kind."""


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
            DETECTION_MIN_CONFIDENCE = 0.7

        _CONFIG_CLASS = GoneMaskRCNNConfig
    return _CONFIG_CLASS


def __getattr__(name):
    if name == "GoneMaskRCNNConfig":
        return _make_config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_detector_config(images_per_gpu=1, detection_min_confidence=0.7):
    """An instance of GoneMaskRCNNConfig, optionally with a larger batch (IMAGES_PER_GPU)."""
    base = _make_config_class()
    if images_per_gpu == 1 and detection_min_confidence == 0.7:
        return base()
    attrs = {"IMAGES_PER_GPU": int(images_per_gpu), "DETECTION_MIN_CONFIDENCE": float(detection_min_confidence)}
    return type("GoneMaskRCNNConfig", (base,), attrs)()


def load_detector(weights_path, images_per_gpu=1, detection_min_confidence=0.7, model_dir=None):
    """Matterport-compatible ``MaskRCNN`` in inference mode with the COCO config, weights loaded
    by layer name from a Keras-2 HDF5 file (e.g. mask_rcnn_coco.h5)."""
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
        with h5py.File(path, "r") as f:
            names = set(f.keys())
    except OSError as e:
        raise ModelLoadError(f"cannot read {path}: {e}") from None
    if "conv1" not in names or not any(n.startswith("mrcnn_") for n in names):
        raise ModelLoadError(f"{path} does not look like Mask R-CNN weights (no 'conv1' / 'mrcnn_*' groups)")
    try:
        from mrcnn.model import MaskRCNN
    except ImportError as e:
        raise ModelLoadError(f"the mrcnn package is not available: {e}") from None
    config = make_detector_config(images_per_gpu, detection_min_confidence)
    model_dir = model_dir or tempfile.mkdtemp(prefix="gone_mrcnn_")
    model = MaskRCNN(mode="inference", config=config, model_dir=str(model_dir))
    try:
        model.load_weights(str(path), by_name=True)
    except Exception as e:  # keep the message, not the traceback
        raise ModelLoadError(f"cannot load Mask R-CNN weights from {path}: {type(e).__name__}: {e}") from None
    return model


def load_inpainter(checkpoint):
    """DeepFill v1 ``InpaintModel`` from Yu's TF1 checkpoint folder / ``snap-N`` prefix or a native file."""
    if checkpoint is None:
        from gone.weights import manual_instructions
        raise ModelLoadError("no inpainting checkpoint given and none cached; "
                             + manual_instructions("deepfill_v1_places2"))
    path = pathlib.Path(checkpoint)
    prefix_ok = path.parent.is_dir() and any(path.parent.glob(path.name + ".index"))
    if not path.exists() and not prefix_ok:
        raise ModelLoadError(f"inpainting checkpoint not found: {path}")
    if path.is_dir() and not any(path.glob("*.index")) and not any(path.iterdir()):
        raise ModelLoadError(f"{path} is an empty folder, not a checkpoint")
    try:
        from inpaint import InpaintModel
    except ImportError as e:
        raise ModelLoadError(f"the inpaint package is not available: {e}") from None
    try:
        return InpaintModel.from_checkpoint(str(path))
    except Exception as e:
        raise ModelLoadError(f"cannot load inpainting checkpoint {path}: {type(e).__name__}: {e}") from None
