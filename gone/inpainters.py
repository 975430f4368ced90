"""Inpainters: what fills the hole once the people are masked out.

``make_inpainter(kind="auto", checkpoint=None, **opts)`` returns an object with

- ``kind``: the kind actually used ("lama", "deepfill", "deepfill-random", "patchmatch", "telea", "ns");
- ``description``: one line for the user, e.g. "PatchMatch (no DeepFill checkpoint found)";
- ``fill(images, holes)``: network-ready batches, RGB uint8 N x H x W x 3 + bool N x H x W
  (True = fill) -> RGB uint8 N x H x W x 3 filled inside each hole. Nothing is cropped, scaled,
  padded or composited here: ``gone.pipeline.PeopleRemover`` prepares the regions (sides
  multiples of 64, DeepFill needs 8) and pastes only the hole back. DeepFill is
  ``inpaint.InpaintModel.fill``; PatchMatch and OpenCV fill each image of the batch.

An inpainter may also advertise ``region_defaults``, the region parameters of
``PeopleRemover`` (``working_size``, ``context_margin``, ``min_context``, ``size_multiple``) it
prefers; the pipeline uses them for the parameters its caller did not set.

Kinds (``INPAINTER_KINDS``):

- ``"auto"``: LaMa when its weights are given (``lama_weights``) or cached
  (``gone.weights.find_weight_file("big-lama")``), unless a DeepFill checkpoint is given; else
  DeepFill v1 when a checkpoint is given or found in the weights cache
  (``gone.weights.find_weight_file("deepfill_v1_places2")``); else PatchMatch. Never random
  weights. ``auto_lama=False`` leaves LaMa out (the paper's experiments: DeepFill v1, else
  PatchMatch).
- ``"lama"``: LaMa big-lama (``lama.LamaInpainter``, Suvorov et al. 2022) from ``lama_weights``
  (best.ckpt, a big-lama/ folder or the converted .npz) or the cache; a clear error when there is
  none. ``fill`` is bin/predict.py's arithmetic: uint8 / 255 as float32, the masked image and the
  mask through the network (``LamaInpainter.fill``), ``clip(x * 255, 0, 255)`` truncated to uint8.
  Regions (``LAMA_REGION``): full resolution up to 2048 px on a region's long side (larger
  regions are downscaled to it; LaMa generalises to about 2k px though trained at 256, Suvorov et
  al. 2022), at least 128 px of context around each hole (IOPaint's default crop margin,
  ``hd_strategy_crop_margin``), sides padded to a multiple of 8 as bin/predict.py pads
  (``PAD_OUT_TO_MODULO``). Option: ``precision`` ("float32" or "bfloat16").
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

INPAINTER_KINDS = ("auto", "lama", "deepfill", "deepfill-random", "patchmatch", "telea", "ns")


_PATCHMATCH_LOCK = threading.Lock()


class InpainterError(ValueError):
    """An unknown inpainter kind, a bad option or a missing component; one clear line."""


def _check_batch(images, holes):
    """Network-ready arrays: RGB uint8 N x H x W x 3 and bool N x H x W."""
    images, holes = np.asarray(images), np.asarray(holes)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise InpainterError(f"fill expects RGB uint8 N x H x W x 3, got {images.dtype} {images.shape}")
    if holes.shape != images.shape[:3]:
        raise InpainterError(f"fill expects holes of shape {images.shape[:3]}, got {holes.shape}")
    return images, holes.astype(bool, copy=False)


class _Inpainter:
    """A classical inpainter: ``fill`` runs ``_fill_one`` on each image of the batch."""

    kind = ""
    description = ""

    def _fill_one(self, image, hole):  # pragma: no cover - abstract
        raise NotImplementedError

    def fill(self, images, holes):
        images, holes = _check_batch(images, holes)
        out = images.copy()
        for i, (image, hole) in enumerate(zip(images, holes)):
            if hole.any():
                out[i] = self._fill_one(np.ascontiguousarray(image), hole)
        return out

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

    def _fill_one(self, image, hole):
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

    def _fill_one(self, image, hole):
        # cv2.inpaint treats the channels alike, so RGB order needs no conversion.
        return self._cv2.inpaint(image, hole.astype(np.uint8) * 255, self.radius, self._flag)


class DeepFillInpainter:
    """DeepFill v1 (Yu et al. 2018): ``inpaint.InpaintModel.fill`` on the network-ready batches."""

    def __init__(self, model, kind, description):
        self.model = model
        self.kind = kind
        self.description = description

    @property
    def weights_source(self):
        return getattr(self.model, "weights_source", "random" if self.kind == "deepfill-random" else "")

    def fill(self, images, holes):
        images, holes = _check_batch(images, holes)
        return self.model.fill(images, holes)

    def fill_like_test_py(self, image, hole):
        """Yu et al.'s test.py on one RGB uint8 image and bool hole: the whole image cropped at the
        bottom/right to a multiple of 8 (test.py's ``image[:h // 8 * 8, :w // 8 * 8]``), one pass
        of the network, test.py's composite and uint8 truncation (``InpaintModel.predict_raw``).
        Returns the cropped RGB output, as test.py writes it."""
        h, w = (int(v) // 8 * 8 for v in np.shape(hole)[:2])
        if h < 8 or w < 8:
            raise InpainterError(f"test.py needs an image of at least 8x8, got {np.shape(hole)[0]}x{np.shape(hole)[1]}")
        bgr = np.ascontiguousarray(np.asarray(image)[:h, :w, ::-1])
        return self.model.predict_raw(bgr, np.asarray(hole, bool)[:h, :w])["output_bgr"][..., ::-1].copy()

    def __repr__(self):
        return f"<{type(self).__name__} kind={self.kind!r}: {self.description}>"


def find_deepfill_checkpoint():
    """The cached DeepFill v1 Places2 checkpoint folder (gone.weights), or None."""
    from gone.weights import find_weight_file

    return find_weight_file("deepfill_v1_places2")


DEEPFILL_OPTIONS = ("batch_size",)


def _deepfill(checkpoint, opts, strict=True, checked=False):
    from gone.models import ModelLoadError, load_inpainter

    unknown = sorted(set(opts) - set(DEEPFILL_OPTIONS))
    if strict and unknown:
        raise InpainterError(f"DeepFill takes no option(s) {', '.join(unknown)}")
    try:
        model = load_inpainter(checkpoint, checked=checked)
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


# LaMa's preferred PeopleRemover region parameters (see the module docstring).
LAMA_REGION = {"working_size": 2048, "context_margin": 0.5, "min_context": 128, "size_multiple": 8}
LAMA_OPTIONS = ("precision",)


class LamaFill:
    """LaMa (``lama.LamaInpainter``) behind the inpainter interface: network-ready uint8 batches
    in, the raw prediction as uint8 out (nothing composited: ``PeopleRemover`` pastes the hole)."""

    kind = "lama"
    region_defaults = LAMA_REGION

    def __init__(self, model, description):
        self.model = model
        self.description = description

    @property
    def weights_source(self):
        return getattr(self.model, "weights_source", "")

    def fill(self, images, holes):
        images, holes = _check_batch(images, holes)
        # bin/predict.py: the image read as float32 / 255; LamaInpainter.fill masks it
        # (image * (1 - mask)) and appends the mask, as the original's forward does.
        x = images.astype(np.float32) / np.float32(255)
        pred = np.asarray(self.model.fill(x, holes))
        # bin/predict.py's cast: clip(x * 255, 0, 255).astype('uint8') (truncating)
        return np.clip(pred * 255, 0, 255).astype(np.uint8)

    def __repr__(self):
        return f"<{type(self).__name__} kind={self.kind!r}: {self.description}>"


def find_lama_weights():
    """The cached LaMa big-lama weights (gone.weights, the converted file), or None."""
    from gone.weights import find_weight_file

    return find_weight_file("big-lama")


def _lama(path, opts, strict=True, why="", checked=False):
    from gone.models import ModelLoadError, load_lama

    unknown = sorted(set(opts) - set(LAMA_OPTIONS))
    if strict and unknown:
        raise InpainterError(f"LaMa takes no option(s) {', '.join(unknown)}")
    try:
        model = load_lama(path, checked=checked, **{k: opts[k] for k in LAMA_OPTIONS if k in opts})
    except ModelLoadError as err:
        raise InpainterError(str(err)) from None
    return LamaFill(model, f"LaMa big-lama ({path}{why})")


def _options_for(cls, opts):
    """The subset of ``opts`` that ``cls`` takes ("auto" may end with any of the kinds)."""
    import inspect

    names = set(inspect.signature(cls.__init__).parameters) - {"self", "description", "kind"}
    return {k: v for k, v in opts.items() if k in names}


def make_inpainter(kind="auto", checkpoint=None, checked=False, lama_weights=None, auto_lama=True, **opts):
    """The inpainter of ``kind`` (see the module docstring); ``opts`` go to its constructor
    (patchmatch: patch_size, seed; telea/ns: radius; deepfill*: batch_size; lama: precision).
    With "auto", the options of the kinds not chosen are ignored. ``checkpoint``: DeepFill's;
    ``lama_weights``: LaMa's; ``auto_lama``: whether "auto" may pick LaMa. ``checked``: the
    caller already checked the checkpoint (``gone.models.check_inpainter_checkpoint``;
    gone.options.check_setup)."""
    kind = "auto" if kind is None else str(kind).strip().lower()
    if kind not in INPAINTER_KINDS:
        raise InpainterError(f"unknown inpainter {kind!r}; choose one of {', '.join(INPAINTER_KINDS)}")
    if checkpoint is not None and kind in ("patchmatch", "telea", "ns", "deepfill-random", "lama"):
        raise InpainterError(f"a DeepFill checkpoint was given but the {kind!r} inpainter uses none; "
                             "use --inpainter deepfill (or auto)")
    if lama_weights is not None and kind not in ("auto", "lama"):
        raise InpainterError(f"LaMa weights were given but the {kind!r} inpainter uses none; "
                             "use --inpainter lama (or auto)")
    if kind == "lama":
        path = lama_weights if lama_weights is not None else find_lama_weights()
        if path is None:
            raise InpainterError("no LaMa weights given and none cached; run `gone weights --download big-lama` "
                                 "or pass --lama-weights PATH")
        return _lama(pathlib.Path(path), opts, checked=checked and lama_weights is not None)
    if kind == "auto" and auto_lama:
        if lama_weights is not None:
            return _lama(pathlib.Path(lama_weights), opts, strict=False, why=", auto: LaMa weights given",
                         checked=checked)
        found = find_lama_weights() if checkpoint is None else None
        if found is not None:
            return _lama(found, opts, strict=False, why=", auto: LaMa weights cached")
    if kind == "auto":
        if checkpoint is not None:
            return _deepfill(pathlib.Path(checkpoint), opts, strict=False, checked=checked)
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
        return _deepfill(pathlib.Path(path), opts, checked=checked and checkpoint is not None)
    if kind == "deepfill-random":
        return _deepfill_random(opts)
    cls = PatchMatchInpainter if kind == "patchmatch" else OpenCVInpainter
    unknown = sorted(set(opts) - set(_options_for(cls, opts)))
    if unknown:
        raise InpainterError(f"the {kind!r} inpainter takes no option(s) {', '.join(unknown)}")
    if kind == "patchmatch":
        return PatchMatchInpainter(**opts)
    return OpenCVInpainter(kind, **opts)
