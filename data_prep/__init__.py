"""Data preparation for the CS230 people-removal experiments.

- ``data_prep.synth``: a seeded synthetic benchmark (person-like figures with shadows and held
  objects on natural/procedural backgrounds; clean background = ground truth; COCO export).
- ``data_prep.coco_splits``: the paper's COCO 2014 splits as versioned, deterministic manifests.
- ``data_prep.paste_back``: COCO people pasted onto person-free COCO photos (ground truth = the
  untouched photo).

Command line: ``python -m data_prep {synth,splits,paste_back} --help``. See docs/data_prep.md.
"""
