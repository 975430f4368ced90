"""Synthetic people-removal benchmark, in the spirit of Matterport's "shapes" toy dataset.

Each scene is drawn deterministically from ``(seed, index)`` with a seeded ``numpy`` Generator:
person-like figures (head, hair, torso, two-segment arms and legs in varied poses, sizes and
clothing colours) stand on a background (a procedural texture or a random crop of one of the
natural images that ship with scikit-image), cast a soft shadow on it and sometimes hold a bag or
a ball. Because the background is drawn first, the clean background is exact ground truth for a
people-removal method.

    scene = make_scene(seed=0, index=3)          # SynthScene: image, background, masks, ...
    ann = generate("out/synth", n_scenes=12)     # out/synth/{annotations.json,images/,backgrounds/}

The COCO export (categories ``person`` = 1, ``shadow`` = 2, ``held_object`` = 3; RLE
segmentations; ``iscrowd`` 0) loads with ``pycocotools.coco.COCO``. Shadow and held-object
annotations carry ``person_annotation_id``, the id of the person they belong to; held objects also
carry ``object_kind`` ("bag" | "ball"), which a COCO detector would call "handbag" / "sports ball"
(``COCO_CLASS_OF_OBJECT_KIND``; ``oracle_instances(scene)`` gives a perfect detector's masks).

Command line: ``python -m data_prep.synth --out out/synth --n_scenes 12 --seed 0``.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import pathlib

import numpy as np
from scipy import ndimage
from skimage import draw

from gone.io import write_bytes_atomic

CATEGORIES = (
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "shadow", "supercategory": "shadow"},
    {"id": 3, "name": "held_object", "supercategory": "object"},
)
PERSON_CATEGORY_ID, SHADOW_CATEGORY_ID, HELD_OBJECT_CATEGORY_ID = 1, 2, 3

# The COCO class a perfect detector would give each kind of held object (oracle detections).
COCO_CLASS_OF_OBJECT_KIND = {"bag": "handbag", "ball": "sports ball"}

# Natural images shipped inside scikit-image (no download). `astronaut` and `camera` are left out
# on purpose: they contain people, which would make the clean background wrong.
NATURAL_BACKGROUNDS = ("coffee", "chelsea", "rocket", "coins", "brick", "grass", "gravel", "moon",
                       "hubble_deep_field", "immunohistochemistry")
PROCEDURAL_BACKGROUNDS = ("smooth_noise", "stripes", "checker", "gradient")

SKIN_TONES = np.array([[255, 219, 172], [241, 194, 125], [224, 172, 105], [198, 134, 66],
                       [141, 85, 36], [92, 58, 32]], np.float32)
HAIR_COLOURS = np.array([[20, 15, 10], [60, 40, 20], [120, 80, 40], [200, 170, 90],
                         [150, 150, 150], [90, 30, 20]], np.float32)


@dataclasses.dataclass
class SynthScene:
    """One synthetic scene. Masks are bool HxWxN (visible pixels only: a figure in front hides
    the one behind it; a held object hides the hand holding it)."""

    image: np.ndarray            # HxWx3 uint8, the photo with people
    background: np.ndarray       # HxWx3 uint8, the same scene without people, shadows, objects
    person_masks: np.ndarray     # HxWxN bool
    shadow_masks: np.ndarray     # HxWxN bool, shadow of person i (cast on the background)
    object_masks: np.ndarray     # HxWxM bool
    object_owner: np.ndarray     # M int: index of the person holding object j
    object_kinds: tuple          # M str: "bag" | "ball"
    background_source: str       # e.g. "natural:coffee" or "procedural:stripes"
    seed: int
    index: int

    @property
    def num_people(self) -> int:
        return int(self.person_masks.shape[-1])

    @property
    def removal_mask(self) -> np.ndarray:
        """HxW bool: everything a perfect people remover must repaint (people, shadows, objects)."""
        stack = np.concatenate([self.person_masks, self.shadow_masks, self.object_masks], axis=-1)
        return stack.any(axis=-1) if stack.shape[-1] else np.zeros(self.image.shape[:2], bool)


# ----------------------------------------------------------------------------------------------
# Backgrounds

@functools.lru_cache(maxsize=None)
def _natural_image(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) * (255.0 / max(float(img.max()), 1.0))).astype(np.uint8)
    img.setflags(write=False)
    return img


def _resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (Pillow: ~10x faster than ndimage.zoom here) -> float32."""
    from PIL import Image

    if img.dtype == np.uint8:
        out = Image.fromarray(np.ascontiguousarray(img)).resize((width, height),
                                                               Image.Resampling.BILINEAR)
        return np.asarray(out, dtype=np.float32)
    channels = [Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), mode="F")
                .resize((width, height), Image.Resampling.BILINEAR) for c in range(img.shape[-1])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)


def _natural_background(rng, name, height, width):
    src = _natural_image(name)
    sh, sw = src.shape[:2]
    # Crop a random window with the target aspect ratio, 45-100 % of the largest that fits.
    max_scale = min(sh / height, sw / width)
    scale = max_scale * rng.uniform(0.45, 1.0)
    ch, cw = max(8, int(height * scale)), max(8, int(width * scale))
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    crop = src[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = _resize_bilinear(crop, height, width)
    return np.clip(out, 0, 255)


def _procedural_background(rng, kind, height, width):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0 = rng.uniform(30, 230, 3).astype(np.float32)
    c1 = rng.uniform(30, 230, 3).astype(np.float32)
    if kind == "smooth_noise":
        low = rng.random((max(2, height // 16), max(2, width // 16), 1)).astype(np.float32)
        t = _resize_bilinear(low, height, width)
        t = ndimage.gaussian_filter(t, sigma=(3, 3, 0))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(8, 40)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        t = (0.5 + 0.5 * np.sin(2 * np.pi * phase))[..., None]
    elif kind == "checker":
        cell = int(rng.integers(10, 40))
        t = (((yy // cell) + (xx // cell)) % 2)[..., None]
    else:  # gradient, e.g. a sky-to-ground backdrop
        angle = rng.uniform(0, 2 * np.pi)
        proj = xx * np.cos(angle) + yy * np.sin(angle)
        t = ((proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6))[..., None]
    out = c0 * (1 - t) + c1 * t
    grain = rng.normal(0.0, 4.0, (height, width, 1)).astype(np.float32)  # sensor-like grain
    return np.clip(out + grain, 0, 255)


def _make_background(rng, height, width):
    if rng.random() < 0.6:
        name = NATURAL_BACKGROUNDS[int(rng.integers(len(NATURAL_BACKGROUNDS)))]
        return _natural_background(rng, name, height, width), f"natural:{name}"
    kind = PROCEDURAL_BACKGROUNDS[int(rng.integers(len(PROCEDURAL_BACKGROUNDS)))]
    return _procedural_background(rng, kind, height, width), f"procedural:{kind}"


# ----------------------------------------------------------------------------------------------
# Figures

class _Canvas:
    """Rasterises parts of one figure: a colour layer plus a coverage mask."""

    def __init__(self, height, width):
        self.shape = (height, width)
        self.mask = np.zeros(self.shape, bool)
        self.colour = np.zeros(self.shape + (3,), np.float32)

    def _paint(self, rr, cc, colour):
        self.mask[rr, cc] = True
        self.colour[rr, cc] = colour

    def ellipse(self, cy, cx, ry, rx, colour, rotation=0.0):
        rr, cc = draw.ellipse(cy, cx, max(ry, 1.0), max(rx, 1.0), shape=self.shape,
                              rotation=rotation)
        self._paint(rr, cc, colour)

    def polygon(self, ys, xs, colour):
        rr, cc = draw.polygon(np.asarray(ys), np.asarray(xs), shape=self.shape)
        self._paint(rr, cc, colour)

    def segment(self, p0, p1, thickness, colour):
        """A limb: a thick line (rectangle) with round caps; points are (y, x)."""
        (y0, x0), (y1, x1) = p0, p1
        dy, dx = y1 - y0, x1 - x0
        norm = max(np.hypot(dy, dx), 1e-6)
        ny, nx = -dx / norm * thickness / 2, dy / norm * thickness / 2
        self.polygon([y0 + ny, y1 + ny, y1 - ny, y0 - ny], [x0 + nx, x1 + nx, x1 - nx, x0 - nx],
                     colour)
        for (y, x) in (p0, p1):
            rr, cc = draw.disk((y, x), max(thickness / 2, 1.0), shape=self.shape)
            self._paint(rr, cc, colour)


def _limb_end(start, length, angle):
    """Joint position in image (y, x) from `start`, pointing `angle` radians from straight down."""
    return (start[0] + length * np.cos(angle), start[1] + length * np.sin(angle))


def _draw_person(rng, height, width, foot_y, centre_x, person_height, girth_scale=1.0):
    """Draws one figure; returns (canvas, hand positions, pixel scale)."""
    canvas = _Canvas(height, width)
    s = person_height
    girth = rng.uniform(0.85, 1.25) * girth_scale     # body width factor
    facing = 1.0 if rng.random() < 0.5 else -1.0      # mirror the pose

    def pt(lx, ly):  # body coordinates (units of person height, y up from feet) -> image (y, x)
        return (foot_y - ly * s, centre_x + facing * lx * s)

    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.9, 1.05)
    hair = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]
    shirt = rng.uniform(20, 240, 3).astype(np.float32)
    pants = rng.uniform(15, 200, 3).astype(np.float32)
    shoes = rng.uniform(0, 80, 3).astype(np.float32)
    long_sleeves = rng.random() < 0.5

    hip_y, shoulder_y = 0.50, 0.82
    hip_w, shoulder_w = 0.065 * girth, 0.11 * girth
    limb_w, arm_w = 0.075 * s * girth, 0.05 * s * girth

    # Legs (drawn first, the torso overlaps the hips). Walking / standing / kicking poses.
    stride = rng.uniform(-0.45, 0.45)
    for side, swing in ((-1, stride), (1, -stride * rng.uniform(0.3, 1.0))):
        hip = pt(side * hip_w * 0.7, hip_y)
        knee = _limb_end(hip, 0.25 * s, facing * swing)
        bend = rng.uniform(0.0, 0.6)
        ankle = _limb_end(knee, 0.24 * s, facing * (swing - bend))
        canvas.segment(hip, knee, limb_w, pants)
        canvas.segment(knee, ankle, limb_w * 0.85, pants)
        toe = (ankle[0], ankle[1] + facing * 0.06 * s)
        canvas.segment(ankle, toe, limb_w * 0.6, shoes)

    # Torso: a trapezoid from shoulders to hips, plus a belt-line band of the trousers.
    ys, xs = zip(*[pt(-shoulder_w, shoulder_y), pt(shoulder_w, shoulder_y),
                   pt(hip_w * 1.25, hip_y), pt(-hip_w * 1.25, hip_y)])
    canvas.polygon(ys, xs, shirt)
    ys, xs = zip(*[pt(-hip_w * 1.25, hip_y + 0.03), pt(hip_w * 1.25, hip_y + 0.03),
                   pt(hip_w * 1.3, hip_y - 0.04), pt(-hip_w * 1.3, hip_y - 0.04)])
    canvas.polygon(ys, xs, pants)

    # Arms: upper arm from the shoulder, forearm from the elbow; angles from straight down.
    hands = []
    for side in (-1, 1):
        shoulder = pt(side * shoulder_w * 0.9, shoulder_y - 0.01)
        upper = side * facing * rng.uniform(0.05, 1.6)
        elbow = _limb_end(shoulder, 0.16 * s, upper)
        fore = upper + side * facing * rng.uniform(-0.3, 1.4)
        wrist = _limb_end(elbow, 0.15 * s, fore)
        canvas.segment(shoulder, elbow, arm_w, shirt)
        canvas.segment(elbow, wrist, arm_w * 0.9, shirt if long_sleeves else skin)
        hand = _limb_end(wrist, 0.03 * s, fore)
        rr, cc = draw.disk(hand, max(0.03 * s, 1.0), shape=canvas.shape)
        canvas._paint(rr, cc, skin)
        hands.append(hand)

    # Neck, head (slightly tilted), hair cap.
    canvas.segment(pt(0, shoulder_y), pt(0, 0.87), 0.05 * s, skin)
    head_c = pt(0.005, 0.925)
    tilt = rng.uniform(-0.25, 0.25)
    canvas.ellipse(head_c[0], head_c[1], 0.068 * s, 0.054 * s, skin, rotation=tilt)
    canvas.ellipse(head_c[0] - 0.03 * s, head_c[1], 0.042 * s, 0.056 * s, hair, rotation=tilt)

    # Vertical shading + a faint fabric texture so the figure is not flat colour.
    yy = np.linspace(1.06, 0.88, height, dtype=np.float32)[:, None, None]
    canvas.colour *= yy
    return canvas, hands, s


def _draw_object(rng, height, width, hand, scale):
    """A held object touching `hand`: a bag hanging below it or a ball held beside it."""
    canvas = _Canvas(height, width)
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    hy, hx = hand
    if rng.random() < 0.6:
        kind = "bag"
        bw, bh = rng.uniform(0.08, 0.14) * scale, rng.uniform(0.08, 0.13) * scale
        top = hy + 0.03 * scale
        canvas.polygon([top, top, top + bh, top + bh],
                       [hx - bw / 2, hx + bw / 2, hx + bw * 0.6, hx - bw * 0.6], colour)
        # The handle reaches up into the hand so the object touches it.
        canvas.segment((hy, hx), (top, hx - bw / 3), max(0.012 * scale, 1.0), colour * 0.7)
        canvas.segment((hy, hx), (top, hx + bw / 3), max(0.012 * scale, 1.0), colour * 0.7)
    else:
        kind = "ball"
        r = rng.uniform(0.035, 0.07) * scale
        angle = rng.uniform(0, 2 * np.pi)
        cy, cx = hy + np.sin(angle) * r * 0.9, hx + np.cos(angle) * r * 0.9
        canvas.ellipse(cy, cx, r, r, colour)
        canvas.ellipse(cy - r * 0.35, cx - r * 0.35, r * 0.3, r * 0.3, np.minimum(colour + 70, 255))
    return canvas, kind


def _cast_shadow(silhouette, foot_y, flatten, shear, height, width):
    """Projects a silhouette onto the ground: a pixel `d` above the feet lands `d * flatten` from
    the foot line (behind the figure if flatten > 0, in front if < 0), shifted sideways by
    `d * shear`. Inverse mapping, nearest neighbour; returns a float soft mask."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dist = (foot_y - yy) / flatten                     # height above the feet of the source pixel
    src_y = np.rint(foot_y - dist).astype(np.int64)
    src_x = np.rint(xx - dist * shear).astype(np.int64)
    valid = (dist >= 0) & (src_y >= 0) & (src_y < height) & (src_x >= 0) & (src_x < width)
    out = np.zeros((height, width), np.float32)
    out[valid] = silhouette[src_y[valid], src_x[valid]]
    return out


def _scene_rng(seed: int, index: int) -> np.random.Generator:
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def make_scene(seed: int, index: int, height: int = 256, width: int = 320, *,
               min_people: int = 1, max_people: int = 3,
               object_probability: float = 0.4) -> SynthScene:
    """Draws scene `index` of the benchmark with base `seed`; same arguments, same pixels."""
    if height < 32 or width < 32:
        raise ValueError(f"scene size must be at least 32x32, got {height}x{width}")
    rng = _scene_rng(seed, index)
    background, source = _make_background(rng, height, width)
    n_people = int(rng.integers(min_people, max_people + 1))
    close_up = n_people > 0 and rng.random() < 0.12   # a large-crop scene: one person fills it

    people = []
    for _ in range(n_people):
        if close_up:
            person_height = height * rng.uniform(1.9, 2.4)
            foot_y = height + person_height * rng.uniform(0.4, 0.5)
            centre_x = width * rng.uniform(0.4, 0.6)
            girth_scale = rng.uniform(1.5, 1.9)
        else:
            foot_y = height * rng.uniform(0.55, 1.02)
            # Perspective: figures lower in the frame are nearer, hence taller.
            person_height = height * rng.uniform(0.55, 0.95) * (0.45 + 0.6 * foot_y / height)
            if rng.random() < 0.8:   # most heads stay inside the frame
                person_height = min(person_height, foot_y * rng.uniform(0.85, 0.98))
            centre_x = width * rng.uniform(0.1, 0.9)
            girth_scale = 1.0
        people.append((foot_y, centre_x, person_height, girth_scale))
        if close_up:
            break
    people.sort(key=lambda p: p[0])   # far (higher foot line) first: painter's order

    flatten = rng.uniform(0.2, 0.45) * (1 if rng.random() < 0.7 else -1)  # one sun per scene
    shear = rng.uniform(-1.2, 1.2)
    darkness = rng.uniform(0.35, 0.6)
    blur = rng.uniform(1.0, 2.5)

    image = background.copy()
    person_layers, object_layers, owners, kinds, shadows = [], [], [], [], []
    for i, (foot_y, centre_x, person_height, girth_scale) in enumerate(people):
        canvas, hands, scale = _draw_person(rng, height, width, foot_y, centre_x, person_height,
                                            girth_scale)
        silhouette = canvas.mask.astype(np.float32)
        obj = None
        if rng.random() < object_probability:
            hand = hands[int(rng.integers(2))]
            obj, kind = _draw_object(rng, height, width, hand, scale)
            silhouette = np.maximum(silhouette, obj.mask)
        soft = ndimage.gaussian_filter(
            _cast_shadow(silhouette, foot_y, flatten, shear, height, width), blur)
        shadows.append(soft)
        person_layers.append(canvas)
        if obj is not None:
            object_layers.append(obj)
            owners.append(i)
            kinds.append(kind)

    # Shadows darken the background only (they are cast on the ground, under every figure). The
    # faint tail of the blur (< 1 % darkening) is cut so the shadow masks cover every changed pixel.
    cast = [soft * darkness > 0.01 for soft in shadows]
    shade = np.clip(np.sum(shadows, axis=0), 0, 1) if shadows else np.zeros((height, width))
    if cast:
        shade = np.where(np.any(cast, axis=0), shade, 0.0)
    image *= (1.0 - darkness * shade)[..., None]

    # Paint figures and objects in depth order; later layers hide earlier ones.
    layers = []   # (kind, index, canvas)
    for i, canvas in enumerate(person_layers):
        layers.append(("person", i, canvas))
        for j, owner in enumerate(owners):
            if owner == i:
                layers.append(("object", j, object_layers[j]))
    label = np.full((height, width), -1, np.int64)   # layer index of the visible pixel
    for k, (_, _, canvas) in enumerate(layers):
        image[canvas.mask] = canvas.colour[canvas.mask]
        label[canvas.mask] = k
    texture = 1.0 + rng.normal(0.0, 0.03, (height, width, 1)).astype(np.float32)
    covered = label >= 0
    image[covered] *= texture[covered]

    person_masks = np.zeros((height, width, len(person_layers)), bool)
    object_masks = np.zeros((height, width, len(object_layers)), bool)
    for k, (kind, idx, _) in enumerate(layers):
        target = person_masks if kind == "person" else object_masks
        target[..., idx] = label == k
    shadow_masks = np.zeros((height, width, len(shadows)), bool)
    for i, visible in enumerate(cast):
        shadow_masks[..., i] = visible & ~covered

    return SynthScene(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        background=np.clip(np.rint(background), 0, 255).astype(np.uint8),
        person_masks=person_masks, shadow_masks=shadow_masks, object_masks=object_masks,
        object_owner=np.asarray(owners, np.int64), object_kinds=tuple(kinds),
        background_source=source, seed=int(seed), index=int(index))


def oracle_instances(scene: SynthScene):
    """What a perfect COCO detector would return for the scene: ``(masks, class_names)`` with
    bool HxWx(N+M) visible masks, the N people ("person") first, then the M held objects
    (``COCO_CLASS_OF_OBJECT_KIND``: "handbag", "sports ball"). Shadows are not instances."""
    masks = np.concatenate([scene.person_masks, scene.object_masks], axis=-1)
    names = ["person"] * scene.num_people + [COCO_CLASS_OF_OBJECT_KIND[k] for k in scene.object_kinds]
    return masks, names


# ----------------------------------------------------------------------------------------------
# COCO export

def _png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a 2-D bool mask, JSON-ready (counts as str)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _bbox_xywh(mask: np.ndarray) -> list:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


def scene_annotations(scene: SynthScene, image_id: int, first_annotation_id: int) -> list:
    """COCO annotation dicts of a scene (empty masks are left out)."""
    anns, next_id = [], first_annotation_id
    person_ids = {}

    def add(mask, category_id, extra):
        nonlocal next_id
        if not mask.any():
            return None
        ann = {"id": next_id, "image_id": image_id, "category_id": category_id,
               "segmentation": mask_to_rle(mask), "area": int(mask.sum()),
               "bbox": _bbox_xywh(mask), "iscrowd": 0, **extra}
        anns.append(ann)
        next_id += 1
        return ann["id"]

    for i in range(scene.person_masks.shape[-1]):
        person_ids[i] = add(scene.person_masks[..., i], PERSON_CATEGORY_ID, {})
    for i in range(scene.shadow_masks.shape[-1]):
        add(scene.shadow_masks[..., i], SHADOW_CATEGORY_ID,
            {"person_annotation_id": person_ids.get(i)})
    for j in range(scene.object_masks.shape[-1]):
        add(scene.object_masks[..., j], HELD_OBJECT_CATEGORY_ID,
            {"person_annotation_id": person_ids.get(int(scene.object_owner[j])),
             "object_kind": scene.object_kinds[j]})
    return anns


def scene_file_name(index: int) -> str:
    return f"synth_{index:05d}.png"


def generate(out_dir, n_scenes: int, seed: int = 0, height: int = 256, width: int = 320,
             progress: bool = True) -> pathlib.Path:
    """Writes `n_scenes` scenes: `images/`, `backgrounds/` (clean ground truth, same file names)
    and `annotations.json` (COCO) under `out_dir`; returns the annotations path. Files are written
    atomically and are byte-identical for the same arguments."""
    if n_scenes < 0:
        raise ValueError(f"n_scenes must be >= 0, got {n_scenes}")
    out = pathlib.Path(out_dir)
    images, annotations = [], []
    iterator = range(n_scenes)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="synthetic scenes", unit="scene", leave=False, disable=None)
    for index in iterator:
        scene = make_scene(seed, index, height, width)
        name = scene_file_name(index)
        write_bytes_atomic(out / "images" / name, _png_bytes(scene.image))
        write_bytes_atomic(out / "backgrounds" / name, _png_bytes(scene.background))
        image_id = index + 1
        images.append({"id": image_id, "file_name": name, "height": height, "width": width,
                       "background_file": f"backgrounds/{name}",
                       "background_source": scene.background_source})
        annotations.extend(scene_annotations(scene, image_id, len(annotations) + 1))
    coco = {
        "info": {"description": "GONE synthetic people-removal benchmark (data_prep.synth)",
                 "version": "1.0", "seed": int(seed), "n_scenes": int(n_scenes),
                 "height": int(height), "width": int(width)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [dict(c) for c in CATEGORIES],
    }
    path = out / "annotations.json"
    write_bytes_atomic(path, json.dumps(coco, sort_keys=True, indent=1).encode("utf-8"))
    return path


def load_masks(coco, image_id: int, category_id: int = PERSON_CATEGORY_ID) -> np.ndarray:
    """HxWxN bool masks of one category of one image from a pycocotools COCO object."""
    info = coco.imgs[image_id]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[category_id], iscrowd=None))
    masks = np.zeros((info["height"], info["width"], len(anns)), bool)
    for k, ann in enumerate(anns):
        masks[..., k] = coco.annToMask(ann).astype(bool)
    return masks


def dataset_digest(ann_path) -> str:
    """sha256 of the annotations file (for manifests and reproducibility checks)."""
    return hashlib.sha256(pathlib.Path(ann_path).read_bytes()).hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.synth", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n_scenes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=320)
    args = parser.parse_args(argv)
    path = generate(args.out, args.n_scenes, args.seed, args.height, args.width)
    print(f"wrote {args.n_scenes} scenes; COCO annotations: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
