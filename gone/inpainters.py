"""Inpainters: what fills the hole once the people are masked out.

``make_inpainter(kind="auto", checkpoint=None, **opts)`` returns an object with

- ``kind``: the kind actually used ("deepfill", "deepfill-random", "patchmatch", "telea", "ns");
- ``description``: one line for the user, e.g. "PatchMatch (no DeepFill checkpoint found)";
- ``inpaint(image, hole)``: RGB uint8 HxWx3 + bool HxW (True = fill) -> RGB uint8 HxWx3; every
  pixel outside the hole is the input's;
- ``inpaint_batch(images, holes)``: a list of results.

Kinds (``INPAINTER_KINDS``):

- ``"auto"``: DeepFill v1 when a checkpoint is given or found in the weights cache
  (``gone.weights.find_weight_file("deepfill_v1_places2")``), else PatchMatch. Never random
  weights.
- ``"deepfill"``: DeepFill v1 (``inpaint.InpaintModel``) from ``checkpoint`` or the cache; a clear
  error when there is none.
- ``"deepfill-random"``: DeepFill v1 with random weights, for plumbing tests only: its fills are
  noise.
- ``"patchmatch"``: PatchMatch inpainting (Barnes et al., SIGGRAPH 2009: randomised
  nearest-neighbour field search with propagation; multi-scale, coarse to fine, the hole filled by
  EM-style patch voting as in Wexler et al., CVPR 2004 / PAMI 2007) from the maintained
  ``PyPatchMatch`` package (native library, wheels for Python 3.11+), seeded, hence deterministic.
  Options: ``patch_size`` (patch *radius*, default 3: 7x7 patches, the package's examples),
  ``seed`` (default 0).
- ``"telea"`` / ``"ns"``: OpenCV's fast-marching (Telea 2004) and Navier-Stokes (Bertalmio et al.
  2001) diffusion inpainting (``cv2.inpaint``). Option: ``radius`` (default 5 px).
"""
from __future__ import annotations

import pathlib
import threading

import numpy as np

INPAINTER_KINDS = ("auto", "deepfill", "deepfill-random", "patchmatch", "telea", "ns")


_PATCHMATCH_LOCK = threading.Lock()


class InpainterError(ValueError):
    """An unknown inpainter kind, a bad option or a missing component; one clear line."""


def _check(image, hole, index=None):
    where = "" if index is None else f"image {index}: "
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise InpainterError(f"{where}expected an RGB uint8 HxWx3 image, got {img.dtype} {img.shape}")
    h = np.asarray(hole)
    if h.ndim == 3 and h.shape[-1] in (1, 3):
        h = h.any(axis=-1)
    if h.shape != img.shape[:2]:
        raise InpainterError(f"{where}hole is {h.shape}, image is {img.shape[:2]}")
    return np.ascontiguousarray(img), h.astype(bool)


class _Inpainter:
    kind = ""
    description = ""

    def _fill(self, image, hole):  # pragma: no cover - abstract
        raise NotImplementedError

    def inpaint(self, image, hole):
        image, hole = _check(image, hole)
        if not hole.any():
            return image.copy()
        out = np.asarray(self._fill(image, hole), dtype=np.uint8)
        if out.shape != image.shape:
            raise RuntimeError(f"{self.kind} returned {out.shape} for a {image.shape} input")
        out = out.copy()
        out[~hole] = image[~hole]     # exactly the input outside the hole
        return out

    def inpaint_batch(self, images, holes):
        images, holes = list(images), list(holes)
        if len(images) != len(holes):
            raise InpainterError(f"got {len(images)} images but {len(holes)} holes")
        return [self.inpaint(im, h) for im, h in zip(images, holes)]

    def __repr__(self):
        return f"<{type(self).__name__} kind={self.kind!r}: {self.description}>"


class PatchMatchInpainter(_Inpainter):
    """PatchMatch (Barnes et al. 2009) multi-scale inpainting via the PyPatchMatch package."""

    kind = "patchmatch"

    def __init__(self, patch_size=3, seed=0, description=None):
        patch_size = int(patch_size)
        if patch_size < 1:
            raise InpainterError(f"patch_size (patch radius) must be >= 1, got {patch_size}")
        self.patch_size = patch_size
        self.seed = int(seed)
        self._pm = _load_patchmatch()
        self.description = description or f"PatchMatch ({2 * patch_size + 1}x{2 * patch_size + 1} patches)"

    def _fill(self, image, hole):
        pm = self._pm
        mask = hole.astype(np.uint8) * 255
        # The seed is a global of the native library: seed and fill under one lock, so that
        # threads (e.g. Beam workers) cannot interleave and every call starts from its seed.
        with _PATCHMATCH_LOCK:
            pm.set_random_seed(self.seed)
            return pm.inpaint(image, mask, patch_size=self.patch_size)


def _load_patchmatch():
    try:
        from patchmatch import patch_match
    except ImportError as err:
        raise InpainterError(f"PatchMatch needs the PyPatchMatch package ({err}); "
                             "pip install pypatchmatch, or use --inpainter telea") from None
    if not patch_match.patchmatch_available:
        raise InpainterError("PyPatchMatch is installed but its native library did not load; "
                             "reinstall pypatchmatch, or use --inpainter telea")
    return patch_match


def patchmatch_available():
    """True when the PyPatchMatch native library loads."""
    try:
        _load_patchmatch()
    except InpainterError:
        return False
    return True


class OpenCVInpainter(_Inpainter):
    """OpenCV's ``cv2.inpaint``: "telea" (INPAINT_TELEA) or "ns" (INPAINT_NS)."""

    NAMES = {"telea": "Telea fast marching", "ns": "Navier-Stokes"}

    def __init__(self, kind="telea", radius=5, description=None):
        if kind not in self.NAMES:
            raise InpainterError(f"OpenCV inpainter must be 'telea' or 'ns', got {kind!r}")
        radius = float(radius)
        if not radius > 0:
            raise InpainterError(f"radius must be > 0, got {radius}")
        try:
            import cv2
        except ImportError as err:
            raise InpainterError(f"the {kind} inpainter needs OpenCV ({err}); "
                                 "pip install opencv-python-headless") from None
        self._cv2 = cv2
        self.kind = kind
        self.radius = radius
        self._flag = cv2.INPAINT_TELEA if kind == "telea" else cv2.INPAINT_NS
        self.description = description or f"OpenCV {self.NAMES[kind]} (radius {radius:g} px)"

    def _fill(self, image, hole):
        # cv2.inpaint treats the channels alike, so RGB order needs no conversion.
        return self._cv2.inpaint(image, hole.astype(np.uint8) * 255, self.radius, self._flag)


class DeepFillInpainter(_Inpainter):
    """DeepFill v1 (Yu et al. 2018) through ``inpaint.InpaintModel``."""

    def __init__(self, model, kind, description):
        self.model = model
        self.kind = kind
        self.description = description

    @property
    def weights_source(self):
        return getattr(self.model, "weights_source", "random" if self.kind == "deepfill-random" else "")

    def _fill(self, image, hole):
        return self.model.inpaint(image, hole)

    def inpaint_batch(self, images, holes):
        images, holes = list(images), list(holes)
        if len(images) != len(holes):
            raise InpainterError(f"got {len(images)} images but {len(holes)} holes")
        checked = [_check(im, h, i) for i, (im, h) in enumerate(zip(images, holes))]
        outs = self.model.inpaint_batch([c[0] for c in checked], [c[1] for c in checked])
        results = []
        for (im, h), o in zip(checked, outs):
            o = np.array(o, dtype=np.uint8, copy=True)
            o[~h] = im[~h]
            results.append(o)
        return results


def find_deepfill_checkpoint():
    """The cached DeepFill v1 Places2 checkpoint folder (gone.weights), or None."""
    from gone.weights import find_weight_file

    return find_weight_file("deepfill_v1_places2")


DEEPFILL_OPTIONS = ("batch_size",)


def _deepfill(checkpoint, opts, strict=True):
    from gone.models import ModelLoadError, load_inpainter

    unknown = sorted(set(opts) - set(DEEPFILL_OPTIONS))
    if strict and unknown:
        raise InpainterError(f"DeepFill takes no option(s) {', '.join(unknown)}")
    try:
        model = load_inpainter(checkpoint)
    except ModelLoadError as err:
        raise InpainterError(str(err)) from None
    for k in DEEPFILL_OPTIONS:
        if k in opts:
            setattr(model, k, opts[k])
    return DeepFillInpainter(model, "deepfill", f"DeepFill v1 ({checkpoint})")


def _deepfill_random(opts):
    unknown = sorted(set(opts) - set(DEEPFILL_OPTIONS))
    if unknown:
        raise InpainterError(f"DeepFill takes no option(s) {', '.join(unknown)}")
    try:
        from inpaint import InpaintModel
    except ImportError as err:
        raise InpainterError(f"the inpaint package is not available: {err}") from None
    model = InpaintModel(**opts)
    return DeepFillInpainter(model, "deepfill-random",
                             "DeepFill v1 with RANDOM weights (plumbing test: fills are noise)")


def _options_for(cls, opts):
    """The subset of ``opts`` that ``cls`` takes ("auto" may end with any of the kinds)."""
    import inspect

    names = set(inspect.signature(cls.__init__).parameters) - {"self", "description", "kind"}
    return {k: v for k, v in opts.items() if k in names}


def make_inpainter(kind="auto", checkpoint=None, **opts):
    """The inpainter of ``kind`` (see the module docstring); ``opts`` go to its constructor
    (patchmatch: patch_size, seed; telea/ns: radius; deepfill*: batch_size). With "auto", the
    options of the kinds not chosen are ignored."""
    kind = "auto" if kind is None else str(kind).strip().lower()
    if kind not in INPAINTER_KINDS:
        raise InpainterError(f"unknown inpainter {kind!r}; choose one of {', '.join(INPAINTER_KINDS)}")
    if checkpoint is not None and kind in ("patchmatch", "telea", "ns", "deepfill-random"):
        raise InpainterError(f"a checkpoint was given but the {kind!r} inpainter uses none; "
                             "use --inpainter deepfill (or auto)")
    if kind == "auto":
        if checkpoint is not None:
            return _deepfill(pathlib.Path(checkpoint), opts, strict=False)
        found = find_deepfill_checkpoint()
        if found is not None:
            return _deepfill(found, opts, strict=False)
        if patchmatch_available():
            return PatchMatchInpainter(**_options_for(PatchMatchInpainter, opts),
                                       description="PatchMatch (no DeepFill checkpoint found)")
        return OpenCVInpainter("telea", **_options_for(OpenCVInpainter, opts), description=(
            "OpenCV Telea (no DeepFill checkpoint found; PyPatchMatch not available)"))
    if kind == "deepfill":
        path = checkpoint if checkpoint is not None else find_deepfill_checkpoint()
        if path is None:
            from gone.weights import manual_instructions

            raise InpainterError("no DeepFill checkpoint given and none cached; "
                                 + manual_instructions("deepfill_v1_places2"))
        return _deepfill(pathlib.Path(path), opts)
    if kind == "deepfill-random":
        return _deepfill_random(opts)
    cls = PatchMatchInpainter if kind == "patchmatch" else OpenCVInpainter
    unknown = sorted(set(opts) - set(_options_for(cls, opts)))
    if unknown:
        raise InpainterError(f"the {kind!r} inpainter takes no option(s) {', '.join(unknown)}")
    if kind == "patchmatch":
        return PatchMatchInpainter(**opts)
    return OpenCVInpainter(kind, **opts)
