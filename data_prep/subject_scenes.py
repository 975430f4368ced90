"""Synthetic scenes with a designated subject, for measuring ``gone.subject`` (the rule that
picks which people of a photo to keep).

Drawn with ``data_prep.synth``'s backgrounds and figures, deterministically from ``(seed,
index)``. A scene is one of three kinds:

- ``"subject"`` (60 %): one large person near the centre (``SUBJECT_HEIGHT`` of the frame, feet
  near the bottom edge), with probability 0.35 one or two companions standing beside them
  (similar height, close enough to touch), and 0-3 small passers-by (``PASSER_HEIGHT``) anywhere;
- ``"edge"`` (20 %): no subject; one large passer-by walking through near a side edge plus 0-3
  small ones (hard negatives for a size-only rule);
- ``"crowd"`` (10 %): no subject; 1-4 small passers-by;
- ``"walker"`` (10 %): no subject; one passer-by of 45-70 % of the frame height walking through
  the central third (a hard negative: the rule keeps the people it cannot tell from a subject),
  plus 0-3 small ones.

``truth`` says, per person, whether it is a subject (the designated one or a companion). Masks
are the visible pixels (painter's order by foot line, as ``data_prep.synth``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from data_prep import synth

SUBJECT_HEIGHT = (0.65, 0.95)      # fraction of the frame height
PASSER_HEIGHT = (0.15, 0.42)
KINDS = (("subject", 0.6), ("edge", 0.2), ("crowd", 0.1), ("walker", 0.1))


@dataclasses.dataclass
class SubjectScene:
    image: np.ndarray          # HxWx3 uint8
    person_masks: np.ndarray   # HxWxN bool, visible pixels
    truth: np.ndarray          # N bool: subject (designated or companion)
    kind: str


def make_subject_scene(seed: int, index: int, height: int = 240, width: int = 320) -> SubjectScene:
    """Scene ``index`` of the subject benchmark with base ``seed``; same arguments, same pixels."""
    rng = synth._scene_rng(seed + 7919, index)   # a stream apart from data_prep.synth's scenes
    background, _ = synth._make_background(rng, height, width)
    u = rng.random()
    cut = int(np.searchsorted(np.cumsum([p for _, p in KINDS]), u, side="right"))
    kind = KINDS[min(cut, len(KINDS) - 1)][0]
    people = []                                  # (foot_y, centre_x, person_height, is_subject)
    if kind == "subject":
        s = height * rng.uniform(*SUBJECT_HEIGHT)
        foot = min(height * rng.uniform(0.92, 1.1), s / 0.9 + height * 0.02)
        cx = width * rng.uniform(0.38, 0.62)
        people.append((foot, cx, s, True))
        if rng.random() < 0.35:
            sides = [-1, 1] if rng.random() < 0.3 else [1 if rng.random() < 0.5 else -1]
            for side in sides:
                s2 = s * rng.uniform(0.85, 1.08)
                people.append((foot + height * rng.uniform(-0.03, 0.03),
                               cx + side * s * rng.uniform(0.14, 0.22), s2, True))
    elif kind == "edge":
        s = height * rng.uniform(*SUBJECT_HEIGHT)
        foot = height * rng.uniform(0.9, 1.05)
        cx = width * (rng.uniform(0.0, 0.12) if rng.random() < 0.5 else rng.uniform(0.88, 1.0))
        people.append((foot, cx, s, False))
    elif kind == "walker":
        s = height * rng.uniform(0.45, 0.7)
        people.append((height * rng.uniform(0.75, 0.98), width * rng.uniform(0.33, 0.67), s, False))
    n_small = int(rng.integers(1, 5)) if kind == "crowd" else int(rng.integers(0, 4))
    for _ in range(n_small):
        s = height * rng.uniform(*PASSER_HEIGHT)
        foot = height * rng.uniform(0.45, 0.8)
        people.append((foot, width * rng.uniform(0.05, 0.95), s, False))
    order = sorted(range(len(people)), key=lambda i: people[i][0])   # far first
    image = background.copy()
    label = np.full((height, width), -1, np.int64)
    for i in order:
        foot, cx, s, _ = people[i]
        canvas, _, _ = synth._draw_person(rng, height, width, foot, cx, s)
        image[canvas.mask] = canvas.colour[canvas.mask]
        label[canvas.mask] = i
    masks = np.stack([label == i for i in range(len(people))], axis=-1)
    visible = masks.reshape(-1, len(people)).any(axis=0)
    truth = np.array([p[3] for p in people], bool)
    return SubjectScene(np.clip(np.rint(image), 0, 255).astype(np.uint8), masks[..., visible],
                        truth[visible], kind)
