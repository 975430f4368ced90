"""LaMa (Suvorov et al., WACV 2022, "Resolution-robust Large Mask Inpainting with Fourier
Convolutions"): the big-lama generator of advimman/lama in Keras 3 (TensorFlow or JAX), its
prediction pipeline (bin/predict.py) and a reader of its PyTorch checkpoints that needs no PyTorch.

    from lama import LamaInpainter
    lama = LamaInpainter.from_checkpoint("big-lama")      # folder, best.ckpt, or a converted .npz
    result = lama.predict(image_rgb_uint8, hole_mask)     # uint8 HxWx3, as bin/predict.py writes it
"""
from gonefiles.quiet import quiet_backend_import as _quiet_backend_import

# The backend environment defaults (gonefiles/quiet.py: TensorFlow's Eigen CPU kernels, which run
# the generator faster than its oneDNN ones on the machines measured, docs/benchmarks/lama_inference.md)
# and a quiet first `import keras`; they take effect only when lama is imported before TensorFlow.
_quiet_backend_import()

from lama.checkpoint import CheckpointError  # noqa: E402
from lama.config import LamaConfig, LamaConfigError  # noqa: E402
from lama.inpainter import LamaInpainter, pad_to_modulo  # noqa: E402

__all__ = ["CheckpointError", "LamaConfig", "LamaConfigError", "LamaInpainter", "pad_to_modulo"]
