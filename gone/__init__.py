"""GONE pipeline: detections -> hole masks -> DeepFill inpainting, plus CLI, I/O, weights, metrics.

Modules: ``gone.io`` (read/write images), ``gone.masks`` (hole masks from detections),
``gone.pipeline`` (PeopleRemover), ``gone.models`` (build Mask R-CNN / DeepFill),
``gone.weights`` (published weight files), ``gone.metrics`` (gradient norm, PSNR, SSIM, l1),
``gone.cli`` (the ``gone`` command). Heavy dependencies (Keras, TensorFlow) load lazily.
"""
__version__ = "0.1.0"

# Before anything can import TensorFlow: oneDNN off (mrcnn's reference numerics), quieter C++
# logging (a user's own values win) and a quiet first `import keras` (gonefiles/quiet.py).
from gonefiles.quiet import quiet_backend_import as _quiet_backend_import  # noqa: E402

_quiet_backend_import()
