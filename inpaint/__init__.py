"""DeepFill v1 (Yu et al. 2018, generative inpainting with contextual attention) in Keras 3.

`from inpaint import InpaintModel`; `InpaintModel.from_checkpoint(path).inpaint(rgb, mask)`.
"""
from inpaint.config import InpaintConfig

__all__ = ["InpaintModel", "InpaintConfig"]


def __getattr__(name):
    # lazy: importing the config (e.g. from training scripts) should not build Keras models
    if name in ("InpaintModel", "InpaintError"):
        from inpaint import model

        return getattr(model, name)
    raise AttributeError(f"module 'inpaint' has no attribute {name!r}")
