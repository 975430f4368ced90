"""DeepFill v1 (Yu et al. 2018, generative inpainting with contextual attention) in Keras 3.

`from inpaint import InpaintModel`; `InpaintModel.from_checkpoint(path).inpaint(rgb, mask)`.
"""
from gonefiles.quiet import quiet_backend_import as _quiet_backend_import

_quiet_backend_import()   # backend environment defaults; a quiet first `import keras`

from inpaint.config import InpaintConfig  # noqa: E402

__all__ = ["InpaintModel", "InpaintConfig"]


def __getattr__(name):
    # lazy: importing the config (e.g. from training scripts) should not build Keras models
    if name in ("InpaintModel", "InpaintError"):
        from inpaint import model

        return getattr(model, name)
    raise AttributeError(f"module 'inpaint' has no attribute {name!r}")
