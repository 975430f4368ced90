"""Weight files: the Keras-2 HDF5 layout of Matterport's mask_rcnn_coco.h5 and native Keras 3.

Legacy layout (keras_model.save_weights of Keras 2): root attribute `layer_names`; one group per
layer with attribute `weight_names` (order = layer.weights order) and one dataset per name.
Nested models (rpn_model) are one group; TimeDistributed layers are stored under the wrapper name.
The published file lists weightless layers too and stores its strings as fixed-length bytes.
"""
import logging
import os

import numpy as np

log = logging.getLogger(__name__)


class WeightLoadError(ValueError):
    """A weight file that does not fit the model (or cannot be read)."""


def _decode_strings(values):
    out = []
    for v in np.atleast_1d(values):
        if isinstance(v, (bytes, np.bytes_)):
            v = v.decode("utf-8")
        out.append(str(v))
    return out


def _attr_list(group, name):
    if name not in group.attrs:
        return []
    value = group.attrs[name]
    if isinstance(value, np.ndarray) and value.size == 0:
        return []
    return _decode_strings(value)


def is_legacy_h5(path):
    import h5py
    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs)


def read_legacy_h5(path):
    """-> ordered dict {layer group name: [arrays in weight_names order]} (groups with weights
    only) and the full list of layer names."""
    import h5py
    groups = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        layer_names = _attr_list(root, "layer_names")
        for name in layer_names:
            if name not in root:
                raise WeightLoadError(f"{path}: layer group {name!r} listed in layer_names is missing")
            g = root[name]
            weight_names = _attr_list(g, "weight_names")
            if not weight_names:
                continue
            try:
                groups[name] = [np.asarray(g[w]) for w in weight_names]
            except KeyError as e:
                raise WeightLoadError(f"{path}: group {name!r} lacks dataset {e}") from None
    return groups, layer_names


def _weighted_layers(keras_model, exclude):
    exclude = set(exclude or [])
    return [l for l in keras_model.layers if l.weights and l.name not in exclude]


def load_weights(keras_model, filepath, by_name=False, exclude=None):
    """Load `filepath` into `keras_model`. Legacy HDF5: by_name matches groups to layers by name
    (unknown groups ignored, as Keras 2), otherwise by order of weight-bearing layers; `exclude`
    lists layer names to leave untouched (e.g. the heads when NUM_CLASSES differs).
    Native Keras 3 `.weights.h5` files go through keras' own loader.
    Raises WeightLoadError naming every mismatched layer with expected vs found shapes.
    Returns the list of weight-bearing model layers that got no weights."""
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise WeightLoadError(f"weight file not found: {filepath}")
    try:
        legacy = is_legacy_h5(filepath)
    except OSError as e:
        raise WeightLoadError(f"cannot read weight file {filepath} (not HDF5 or corrupt): {e}") from None
    if not legacy:
        if exclude:
            raise WeightLoadError("exclude is only supported for Keras-2 HDF5 files; "
                                  "native .weights.h5 files load whole")
        try:
            keras_model.load_weights(filepath)
        except Exception as e:  # keras raises various types; report one clear error
            raise WeightLoadError(f"cannot load native Keras weights {filepath}: {e}") from None
        return []
    try:
        groups, _ = read_legacy_h5(filepath)
    except OSError as e:
        raise WeightLoadError(f"cannot read weight file {filepath} (corrupt HDF5?): {e}") from None
    layers = _weighted_layers(keras_model, exclude)
    if by_name:
        pairs = [(l, groups[l.name]) for l in layers if l.name in groups]
        missing = [l.name for l in layers if l.name not in groups]
        if not pairs:
            raise WeightLoadError(f"{filepath}: no layer of the model matches a weight group by name "
                                  f"(file has {list(groups)[:5]}...)")
    else:
        names = list(groups)
        if len(names) != len(layers):
            raise WeightLoadError(
                f"{filepath}: {len(names)} weight groups in the file but {len(layers)} weight-bearing "
                "layers in the model (use by_name=True and/or exclude=[...])")
        pairs = [(l, groups[n]) for l, n in zip(layers, names)]
        missing = []
    problems = []
    for layer, values in pairs:
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(v.shape) for v in values]
        if expected != found:
            problems.append(f"  {layer.name}: expected {expected}, found {found}")
    if problems:
        raise WeightLoadError(f"{filepath}: weight mismatch in {len(problems)} layer(s) "
                              "(exclude them to keep their initial weights):\n" + "\n".join(problems))
    for layer, values in pairs:
        for w, v in zip(layer.weights, values):
            w.assign(v.astype(w.dtype) if hasattr(v, "astype") else v)
    if missing:
        log.warning("weights: %d layer(s) not in %s: %s", len(missing), filepath, ", ".join(missing))
    return missing


def save_weights(keras_model, filepath):
    """Native Keras 3 weights (file name must end in .weights.h5), written atomically."""
    filepath = os.fspath(filepath)
    if not filepath.endswith(".weights.h5"):
        raise ValueError(f"native weight files must end in .weights.h5, got {filepath}")
    tmp = filepath[: -len(".weights.h5")] + ".tmp.weights.h5"
    keras_model.save_weights(tmp)
    os.replace(tmp, filepath)
