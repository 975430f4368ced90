import os as _os

# The reference numerics (Matterport's graph on TensorFlow) are those of TF's Eigen CPU kernels.
# oneDNN's convolutions round differently (up to ~7e-6 per conv), which reorders near-tied RPN
# scores and can change which proposals survive NMS. Measured on 2 CPU cores, detect() costs the
# same either way (4.7 s vs 4.8 s per 1024x1024 image), so the faithful kernels are the default.
# Takes effect only when mrcnn is imported before TensorFlow; set TF_ENABLE_ONEDNN_OPTS=1 to opt out.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
