"""LaMa (Suvorov et al., WACV 2022, "Resolution-robust Large Mask Inpainting with Fourier
Convolutions"): the big-lama generator of advimman/lama in Keras 3 (TensorFlow or JAX), its
prediction pipeline (bin/predict.py) and a reader of its PyTorch checkpoints that needs no PyTorch.

    from lama import LamaInpainter
    lama = LamaInpainter.from_checkpoint("big-lama")      # folder, best.ckpt, or a converted .npz
    result = lama.predict(image_rgb_uint8, hole_mask)     # uint8 HxWx3, as bin/predict.py writes it
"""
from lama.checkpoint import CheckpointError
from lama.config import LamaConfig, LamaConfigError
from lama.inpainter import LamaInpainter, pad_to_modulo

__all__ = ["CheckpointError", "LamaConfig", "LamaConfigError", "LamaInpainter", "pad_to_modulo"]
