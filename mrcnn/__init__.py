# The reference numerics (Matterport's graph on TensorFlow) are those of TF's Eigen CPU kernels.
# oneDNN's convolutions round differently (up to ~7e-6 per conv), which reorders near-tied RPN
# scores and can change which proposals survive NMS. Measured on 2 CPU cores, detect() costs the
# same either way (4.7 s vs 4.8 s per 1024x1024 image), so the faithful kernels are the default.
# Takes effect only when mrcnn is imported before TensorFlow; set TF_ENABLE_ONEDNN_OPTS=1 to opt out.
# quiet_backend_import sets it (the one definition of the backend's environment defaults) and
# filters TensorFlow's start-up noise from the first `import keras`.
from gonefiles.quiet import quiet_backend_import as _quiet_backend_import

_quiet_backend_import()
