"""Checks shared by every weight-file reader (``inpaint`` checkpoints and snapshots, ``mrcnn``
HDF5 weights): weight files are untrusted input, and a NaN or Inf weight (a corrupt file, or a
snapshot written after training diverged) would otherwise load silently and fill holes with
black or detect nothing."""
from __future__ import annotations

import numpy as np


def check_finite(arrays, source, error=ValueError):
    """Raise ``error`` with one line naming ``source`` and the first (sorted) array of ``arrays``
    ({name: array} or (name, array) pairs) holding a NaN or an infinity; integer arrays pass."""
    items = arrays.items() if hasattr(arrays, "items") else arrays
    for name, value in sorted(items, key=lambda item: item[0]):
        value = np.asarray(value)
        if value.dtype.kind not in "fc":
            continue
        finite = np.isfinite(value)
        if not finite.all():
            bad = int(value.size - np.count_nonzero(finite))
            raise error(f"{source}: weight {name} holds {bad} NaN/Inf value(s) of {value.size}; "
                        "refusing a corrupt (or diverged) weight file")
