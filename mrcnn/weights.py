"""Weight files: the Keras-2 HDF5 layout of Matterport's mask_rcnn_coco.h5 and native Keras 3.

Legacy layout (keras_model.save_weights of Keras 2): root attribute `layer_names`; one group per
layer with attribute `weight_names` (order = layer.weights order) and one dataset per name.
Nested models (rpn_model) are one group; TimeDistributed layers are stored under the wrapper name.
The published file lists weightless layers too and stores its strings as fixed-length bytes.
Either layout is refused (WeightLoadError, one line naming the file and the weight) when a weight
holds a NaN or Inf (``gonefiles.check_finite``): a corrupt file must not load silently.
"""
import collections
import logging
import os
import shutil
import urllib.error
import urllib.request

import h5py
import keras
import numpy as np
from gonefiles import check_finite, write_atomic, write_fileobj_atomic

log = logging.getLogger(__name__)

# Published COCO weights (Matterport release v2.0).
COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"


class WeightLoadError(ValueError):
    """A weight file that cannot be read or does not fit the model."""


class WeightsMismatchError(WeightLoadError):
    """The file's weights do not fit the model: layer shapes differ, the layer counts differ
    (loading by order), or the file lacks most of the model's weighted layers. The message names
    the layers and shapes, never the arrays."""


# Above this fraction of the model's (non-excluded) weighted layers missing from a file loaded
# by name, the file is taken to be for another model unless the caller allows partial loads.
MAX_MISSING_FRACTION = 0.5


def _short_list(names, limit=8):
    names = list(names)
    head = ", ".join(names[:limit])
    return head + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


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
    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs)


def read_legacy_h5(path):
    """-> ordered dict {layer group name: [arrays in weight_names order]} (groups with weights
    only) and the full list of layer names."""
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
            check_finite(zip((f"{name}/{w}" for w in weight_names), groups[name]), path, WeightLoadError)
    return groups, layer_names


def _check_native_finite(path):
    """NaN/Inf refusal for a native Keras 3 ``.weights.h5`` (every float dataset in the file)."""
    arrays = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.append((name, obj[()]))
                     if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fc" else None)
    check_finite(arrays, path, WeightLoadError)


def check_weight_file(path):
    """Raise WeightLoadError (one line) unless every weight array of ``path`` (either layout)
    reads back, finite: a file cut short by a killed run or a full disk fails here."""
    path = os.fspath(path)
    try:
        if is_legacy_h5(path):
            read_legacy_h5(path)
        else:
            _check_native_finite(path)
    except WeightLoadError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise WeightLoadError(f"cannot read weight file {path} (truncated or corrupt HDF5): "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _weighted_layers(keras_model, exclude):
    exclude = set(exclude or [])
    return [l for l in keras_model.layers if l.weights and l.name not in exclude]


def _native_mismatch_message(keras_model, filepath, error):
    """One line naming the model weights whose shapes the native file lacks (never arrays)."""
    file_shapes = []
    with h5py.File(filepath, "r") as f:
        f.visititems(lambda name, obj: file_shapes.append(tuple(obj.shape))
                     if isinstance(obj, h5py.Dataset) and "/vars/" in "/" + name else None)
    model_weights = [(w.path, tuple(w.shape)) for w in keras_model.weights]
    available = collections.Counter(file_shapes)
    unmatched = []
    for path, shape in model_weights:
        if available[shape]:
            available[shape] -= 1
        else:
            unmatched.append(f"{path} {shape}")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(first_line) > 200:
        first_line = first_line[:200] + "..."
    detail = (f"; model weights with no array of that shape in the file: {_short_list(unmatched)}"
              if unmatched else "")
    return (f"{filepath}: native Keras 3 weights do not fit this model ({len(file_shapes)} arrays in "
            f"the file, {len(model_weights)} in the model; native files load by object order, so "
            f"only a file saved from the same architecture fits){detail}. Keras said: {first_line}")


def load_weights(keras_model, filepath, by_name=False, exclude=None, allow_partial=False):
    """Load `filepath` into `keras_model` (Matterport's MaskRCNN.load_weights).

    Keras-2 HDF5 (mask_rcnn_coco.h5 and our checkpoints): by_name matches groups to layers by
    name (groups of layers the model lacks are ignored, as Keras 2), otherwise by order of
    weight-bearing layers; `exclude` lists layer names to leave untouched (e.g. the heads when
    NUM_CLASSES differs). Native Keras 3 `.weights.h5` files go through keras' own loader.

    Raises WeightsMismatchError (a ValueError) naming every mismatched layer with expected vs
    found shapes, and when a by-name load finds more than half of the model's non-excluded
    weighted layers missing from the file, unless allow_partial=True (then those layers keep
    their weights and a warning names them). Other unreadable files, and files with a NaN/Inf
    weight, raise WeightLoadError.
    Returns the names of the weight-bearing model layers that got no weights."""
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
            _check_native_finite(filepath)
        except OSError as e:
            raise WeightLoadError(f"cannot read weight file {filepath} (corrupt HDF5?): {e}") from None
        try:
            keras_model.load_weights(filepath)
        except Exception as e:  # keras raises various types (and prints arrays): one clear error
            raise WeightsMismatchError(_native_mismatch_message(keras_model, filepath, e)) from None
        return []
    try:
        groups, _ = read_legacy_h5(filepath)
    except OSError as e:
        raise WeightLoadError(f"cannot read weight file {filepath} (corrupt HDF5?): {e}") from None
    layers = _weighted_layers(keras_model, exclude)
    if by_name:
        pairs = [(l, groups[l.name]) for l in layers if l.name in groups]
        missing = [l.name for l in layers if l.name not in groups]
        if not pairs or (len(missing) > MAX_MISSING_FRACTION * len(layers) and not allow_partial):
            raise WeightsMismatchError(
                f"{filepath}: {len(missing)} of the model's {len(layers)} weighted layers are not in "
                f"the file (missing: {_short_list(missing)}; the file has: {_short_list(groups)}); "
                "is it a weight file for another backbone or model? Pass allow_partial=True to load "
                "the layers that match anyway")
    else:
        names = list(groups)
        if len(names) != len(layers):
            raise WeightsMismatchError(
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
        raise WeightsMismatchError(f"{filepath}: weight mismatch in {len(problems)} layer(s) "
                                   "(exclude them to keep their initial weights):\n" + "\n".join(problems))
    for layer, values in pairs:
        for w, v in zip(layer.weights, values):
            w.assign(v.astype(w.dtype))
    if missing:
        log.warning("weights: %d layer(s) not in %s keep their weights: %s", len(missing), filepath,
                    _short_list(missing, limit=20))
    return missing


def _encode(strings):
    return np.array([s.encode("utf-8") for s in strings], dtype="S")


def _unique_weight_names(layer):
    names, seen = [], set()
    for i, w in enumerate(layer.weights):
        name = f"{w.path}:0"
        if name in seen:
            name = f"{w.path}_{i}:0"
        seen.add(name)
        names.append(name)
    return names


def save_legacy_h5(keras_model, filepath):
    """Keras-2 HDF5 weights by layer name, the layout of Matterport's checkpoints and
    mask_rcnn_coco.h5 (root attribute `layer_names`, one group per layer with `weight_names`),
    written atomically (a crash never leaves a half-written checkpoint). Nested models
    (rpn_model) are one group, as Keras 2 wrote them."""
    def write(path):
        with h5py.File(path, "w") as f:
            f.attrs["layer_names"] = _encode([layer.name for layer in keras_model.layers])
            f.attrs["backend"] = keras.backend.backend().encode("utf-8")
            f.attrs["keras_version"] = keras.__version__.encode("utf-8")
            for layer in keras_model.layers:
                g = f.create_group(layer.name)
                weight_names = _unique_weight_names(layer)
                g.attrs["weight_names"] = _encode(weight_names) if weight_names else np.zeros(0, "S1")
                for wname, w in zip(weight_names, layer.weights):
                    g.create_dataset(wname, data=keras.ops.convert_to_numpy(w))

    write_atomic(os.fspath(filepath), write, suffix=".h5")


def save_weights(keras_model, filepath):
    """Save weights atomically: Keras-2 HDF5 by layer name for `*.h5` (Matterport's format,
    loadable with by_name=True into any mode), native Keras 3 for `*.weights.h5`."""
    filepath = os.fspath(filepath)
    if filepath.endswith(".weights.h5"):
        write_atomic(filepath, keras_model.save_weights, suffix=".weights.h5")
    elif filepath.endswith(".h5"):
        save_legacy_h5(keras_model, filepath)
    else:
        raise ValueError(f"weight files end in .h5 (Keras-2 layout) or .weights.h5 (native Keras 3), "
                         f"got {filepath}")


def download_trained_weights(coco_model_path, verbose=1, url=COCO_MODEL_URL, timeout=60):
    """Matterport's utils.download_trained_weights: fetch the published COCO weights to
    coco_model_path, atomically (a failed download leaves nothing behind)."""
    coco_model_path = os.fspath(coco_model_path)
    if verbose > 0:
        print("Downloading pretrained model to " + coco_model_path + " ...")

    def fetch(out):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out)
        except (urllib.error.URLError, OSError) as exc:
            raise OSError(f"could not download {url} ({exc}); without network access, download "
                          f"it elsewhere and place it at {coco_model_path}") from exc

    write_fileobj_atomic(coco_model_path, fetch)
    if verbose > 0:
        print("... done downloading pretrained model!")
