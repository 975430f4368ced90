"""LaMa weights: a reader of PyTorch (Lightning) checkpoints that needs no PyTorch, and our native file.

**Torch zip checkpoints** (`torch.save` since 1.6; the published `big-lama/models/best.ckpt`): a zip
archive `<name>/data.pkl` (the pickled object), `<name>/data/<key>` (raw storage bytes, one entry per
storage), `<name>/byteorder` ('little' / 'big'; absent = little). A tensor is pickled as a call of
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
whose storage is a persistent id `('storage', torch.<Type>Storage, key, location, numel)`.

A checkpoint is untrusted input, so it is never unpickled with the standard machinery. The
unpickler here resolves exactly these globals:

* `torch._utils._rebuild_tensor_v2` and `torch._utils._rebuild_parameter`: rebuilt as numpy arrays
  (bounds-checked views of the storage bytes, then copied);
* the `torch.<Type>Storage` classes and `torch.UntypedStorage`: storage dtype markers;
* `collections.OrderedDict`.

Every other global (a Lightning callback class used as a dict key, an OmegaConf / argparse
hyper-parameter object, or anything malicious such as `os.system` or `builtins.exec`) becomes an
inert `Placeholder`: calling, instantiating or building one only records its arguments; no module is
imported and no code of the checkpoint's choosing runs. Only the `generator.*` tensors of
`state_dict` are kept.

**Native file**: an `.npz` holding the generator's state-dict arrays (torch layouts, keys without
'generator.') plus a JSON `__manifest__` (format, generator config, stored dtype, source). The
`make_weights.py --npz` form of the golden reference (keys 'generator.…', no manifest) is read too.
"""
from __future__ import annotations

import collections
import io
import json
import math
import pathlib
import pickle
import zipfile
import zlib

import numpy as np

NATIVE_FORMAT = "gone-lama-v1"
MANIFEST_KEY = "__manifest__"
GENERATOR_PREFIX = "generator."


class CheckpointError(ValueError):
    """A weight file that is not a LaMa checkpoint, is damaged, or does not fit the generator."""


# ------------------------------------------------------------------------------ placeholders
class Placeholder:
    """Stands for any global the checkpoint names outside the allow-list. Inert: 'calling' the
    class (REDUCE / NEWOBJ / INST / OBJ) and BUILD / SETITEMS / APPENDS only record data."""

    __slots__ = ("args", "state", "items", "__weakref__")
    module = name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.state, obj.items = args, None, []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.items.append((key, value))

    def append(self, value):
        self.items.append(value)

    def extend(self, values):
        self.items.extend(values)

    def __reduce__(self):   # never re-pickled as what it stands for
        raise TypeError("a checkpoint placeholder cannot be pickled")

    def __repr__(self):
        return f"<placeholder {self.module}.{self.name}>"


def _placeholder_class(module, name):
    return type("Placeholder", (Placeholder,), {"__slots__": (), "module": str(module), "name": str(name)})


# ------------------------------------------------------------------------------ allow-list
class _StorageType:
    def __init__(self, name, dtype):
        self.name, self.dtype = name, np.dtype(dtype)


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}


class _Storage:
    def __init__(self, array, key):
        self.array, self.key = array, key


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise CheckpointError("malformed checkpoint: a tensor without a storage")
    try:
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError):
        raise CheckpointError("malformed checkpoint: bad tensor geometry") from None
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError("malformed checkpoint: bad tensor geometry")
    data = storage.array
    count = math.prod(size)
    if count == 0:
        return np.zeros(size, data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= data.size:
        raise CheckpointError(f"truncated checkpoint: tensor data beyond storage {storage.key}")
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=size,
                                           strides=tuple(s * data.itemsize for s in stride), writeable=False)
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix, byteorder):
        super().__init__(file)
        self._archive, self._prefix, self._byteorder = archive, prefix, byteorder
        self._storages = {}
        self.placeholders = []

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            if _STORAGE_DTYPES[name] is None:
                raise CheckpointError(f"unsupported tensor type torch.{name} in checkpoint")
            return _StorageType(name, _STORAGE_DTYPES[name])
        self.placeholders.append(f"{module}.{name}")
        return _placeholder_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError("malformed checkpoint: unknown persistent id")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError("malformed checkpoint: storage of an unknown type")
        key = str(key)
        if key in self._storages:
            return self._storages[key]
        name = f"{self._prefix}data/{key}"
        try:
            raw = self._archive.read(name)
        except KeyError:
            raise CheckpointError(f"truncated checkpoint: storage {key} is missing") from None
        dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        if storage_type.name == "UntypedStorage":
            dtype = np.dtype(np.uint8)
        try:
            numel = int(numel)
        except (TypeError, ValueError):
            raise CheckpointError("malformed checkpoint: bad storage size") from None
        if len(raw) < numel * dtype.itemsize:
            raise CheckpointError(f"truncated checkpoint: storage {key} has {len(raw)} bytes, "
                                  f"needs {numel * dtype.itemsize}")
        array = np.frombuffer(raw, dtype=dtype, count=numel).astype(dtype.newbyteorder("="))
        storage = _Storage(array, key)
        self._storages[key] = storage
        return storage


# ------------------------------------------------------------------------------ reading
def read_torch_checkpoint(path):
    """The whole pickled object of a torch zip checkpoint, tensors as numpy arrays, unknown
    globals as inert placeholders. Raises CheckpointError (one line) on anything malformed."""
    path = pathlib.Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a PyTorch zip checkpoint, or truncated ({e})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no single data.pkl in the archive)")
        prefix = pickles[0][:-len("data.pkl")]
        try:
            byteorder = archive.read(prefix + "byteorder").decode("ascii").strip() \
                if prefix + "byteorder" in archive.namelist() else "little"
            if byteorder not in ("little", "big"):
                raise CheckpointError(f"{path}: unknown byte order {byteorder!r}")
            data = archive.read(pickles[0])
            unpickler = _SafeUnpickler(io.BytesIO(data), archive, prefix, byteorder)
            obj = unpickler.load()
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: damaged or truncated checkpoint ({e})") from None
        except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                MemoryError, RecursionError) as e:
            raise CheckpointError(f"{path}: malformed checkpoint pickle ({type(e).__name__}: {e})") from None
    return obj


def generator_state_from_object(obj, source="checkpoint"):
    """{key without 'generator.': float32 array} from a loaded checkpoint object (a Lightning
    checkpoint dict with 'state_dict', or a bare state dict)."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: no state_dict in the checkpoint")
    out = {}
    for key, value in state.items():
        if isinstance(key, str) and key.startswith(GENERATOR_PREFIX):
            if not isinstance(value, np.ndarray):
                raise CheckpointError(f"{source}: {key} is not a tensor")
            out[key[len(GENERATOR_PREFIX):]] = value
    if not out:
        raise CheckpointError(f"{source}: no generator.* weights in the checkpoint's state_dict")
    return out


def check_finite(state, source="checkpoint"):
    for key, value in state.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{source}: weight {key} contains NaN or Inf")


def read_generator_state(path):
    """Generator state dict (keys 'model.…', torch layouts) from a torch checkpoint."""
    state = generator_state_from_object(read_torch_checkpoint(path), source=str(path))
    check_finite(state, str(path))
    return state


# ------------------------------------------------------------------------------ native file
def is_npz(path):
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    if head != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith(".npy") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_npz_state(path):
    """(state {key 'model.…': array float32}, manifest dict or None) from our native .npz or the
    make_weights.py --npz form. No pickle (allow_pickle=False)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable .npz weight file ({e})") from None
    manifest = None
    if MANIFEST_KEY in arrays:
        try:
            manifest = json.loads(str(arrays.pop(MANIFEST_KEY)))
        except ValueError:
            raise CheckpointError(f"{path}: malformed manifest") from None
        if manifest.get("format") != NATIVE_FORMAT:
            raise CheckpointError(f"{path}: not a LaMa weight file (format {manifest.get('format')!r})")
    state = {}
    for key, value in arrays.items():
        if key.startswith(GENERATOR_PREFIX):
            key = key[len(GENERATOR_PREFIX):]
        elif manifest is None:
            continue
        state[key] = value.astype(np.float32) if value.dtype == np.float16 else value
    if not state:
        raise CheckpointError(f"{path}: no generator weights in the file")
    check_finite(state, str(path))
    return state, manifest


def save_native(path, state, config_dict, source="", float16=False):
    """Write the generator state dict (torch layouts) as our .npz, atomically. With `float16`,
    float arrays are stored as float16 (half the size; values rounded, so results differ slightly
    from the float32 weights; the manifest says so)."""
    from gonefiles.atomic import write_fileobj_atomic

    arrays = {}
    for key, value in state.items():
        if key.endswith(".num_batches_tracked"):
            continue
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(np.float16 if float16 else np.float32)
        arrays[key] = value
    manifest = {"format": NATIVE_FORMAT, "generator_config": config_dict, "source": str(source),
                "stored_dtype": "float16" if float16 else "float32",
                "note": ("weights rounded to float16 for storage and computed in float32; outputs differ "
                         "slightly from the float32 checkpoint" if float16 else
                         "float32 weights, bit-identical to the checkpoint")}
    arrays[MANIFEST_KEY] = np.array(json.dumps(manifest))

    write_fileobj_atomic(path, lambda f: np.savez(f, **arrays))
    return manifest
