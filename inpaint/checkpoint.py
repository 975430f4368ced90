"""Checkpoints: Yu et al.'s TF1 checkpoints (read without TensorFlow) and our native format.

TF1 `Saver` checkpoints in the V2 bundle format are `<prefix>.index` + `<prefix>.data-SSSSS-of-NNNNN`.
The `.index` file is a LevelDB-style SSTable (uncompressed blocks): key "" holds a BundleHeaderProto
(num_shards, endianness), every other key is a tensor name whose value is a BundleEntryProto
(dtype, shape, shard_id, offset, size, crc32c). The tensor bytes are raw little-endian arrays in the
data shard at `offset`. We parse the table, varints and protobuf fields directly (pure numpy).
Every tensor's bytes are checked against the entry's crc32c (masked as in TensorFlow's
`tensorflow/core/lib/hash/crc32c.h`: rotate right by 15 bits, add 0xa282ead8), as TensorFlow's
bundle reader does, so a damaged data file is refused instead of loading garbage; and no loaded
weight (either format) may hold a NaN or Inf (`gonefiles.check_finite`).

Native format: a `.npz` with the checkpoint variable names as keys plus a JSON manifest entry
(`__manifest__`) naming the format, so `InpaintModel.from_checkpoint` accepts either.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import struct

import zipfile

import numpy as np

from gonefiles.weights import check_finite
from gonefiles.atomic import write_atomic

TABLE_MAGIC = 0xDB4775248B80FB57
NATIVE_FORMAT = "gone-inpaint-v1"
MANIFEST_KEY = "__manifest__"

# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
           9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
_DT_STRING = 7
_CRC_MASK_DELTA = 0xA282EAD8   # tensorflow/core/lib/hash/crc32c.h (kMaskDelta)
_OPTIMIZER_SLOT = re.compile(r"/(Adam|Adam_\d+|Momentum|RMSProp(_\d+)?|Adagrad|ExponentialMovingAverage)$")


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not match the model."""


# ---------------------------------------------------------------------------------- decoding
def _varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint in checkpoint index")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise CheckpointError("malformed varint in checkpoint index")


def _parse_proto(buf) -> dict:
    """Minimal protobuf wire-format parser: {field number: [values]} (ints, bytes)."""
    fields, pos = {}, 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos:pos + length]), pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(field, []).append(value)
    return fields


def _unmask_crc(masked):
    """TensorFlow's crc32c::Unmask: the inverse of ``((crc >> 15) | (crc << 17)) + kMaskDelta``."""
    rot = (masked - _CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _crc32c(data):
    import google_crc32c   # Google's CRC32C (C implementation; no TensorFlow needed)
    return google_crc32c.value(data)


def _signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _read_block(data, offset, size):
    if offset + size + 5 > len(data):
        raise CheckpointError("checkpoint index block points past the end of the file")
    compression = data[offset + size]
    if compression != 0:
        raise CheckpointError(f"compressed checkpoint index blocks (type {compression}) are not supported")
    return data[offset:offset + size]


def _block_entries(block):
    """Yield (key, value) of one SSTable block (prefix-compressed keys, restart array at the end)."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + bytes(block[pos:pos + non_shared])
        pos += non_shared
        yield key, block[pos:pos + value_len]
        pos += value_len


def _read_index(index_path) -> dict:
    data = memoryview(pathlib.Path(index_path).read_bytes())
    if len(data) < 48:
        raise CheckpointError(f"{index_path} is too short to be a TF checkpoint index")
    magic = struct.unpack_from("<Q", data, len(data) - 8)[0]
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{index_path} is not a TF checkpoint index (bad table magic)")
    footer = data[len(data) - 48:]
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)  # metaindex handle (unused)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries = {}
    for _, handle in _block_entries(_read_block(data, index_offset, index_size)):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(_read_block(data, offset, size)):
            entries[key.decode("utf-8")] = bytes(value)
    return entries


# ---------------------------------------------------------------------------------- paths
def resolve_tf_prefix(path) -> pathlib.Path:
    """A checkpoint directory (via its `checkpoint` state file), a `snap-N` prefix, or a
    `snap-N.index` / `.data-*` file -> the prefix."""
    path = pathlib.Path(path)
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(), re.MULTILINE)
            if match:
                prefix = pathlib.Path(match.group(1))
                prefix = prefix if prefix.is_absolute() else path / prefix
                if pathlib.Path(str(prefix) + ".index").is_file():
                    return prefix
                # state files written elsewhere carry absolute paths: retry beside the state file
                local = path / prefix.name
                if pathlib.Path(str(local) + ".index").is_file():
                    return local
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        raise CheckpointError(f"{path}: no usable `checkpoint` state file and "
                              f"{len(indexes)} *.index files; pass the snap-N prefix")
    name = str(path)
    if name.endswith(".index"):
        return pathlib.Path(name[:-len(".index")])
    match = re.match(r"(.*)\.data-\d{5}-of-\d{5}$", name)
    if match:
        return pathlib.Path(match.group(1))
    if pathlib.Path(name + ".index").is_file():
        return path
    raise CheckpointError(f"no TF checkpoint at {path} (expected a directory with a `checkpoint` file, "
                          f"a snap-N prefix with snap-N.index beside it, or a native .npz)")


# ---------------------------------------------------------------------------------- public API
def list_tf_checkpoint(path) -> dict:
    """{name: (shape tuple, numpy dtype)} of a TF bundle checkpoint, without reading the data."""
    return {name: (entry["shape"], entry["dtype"]) for name, entry in _tf_entries(path)[0].items()}


def _tf_entries(path):
    prefix = resolve_tf_prefix(path)
    raw = _read_index(str(prefix) + ".index")
    header = _parse_proto(raw.pop("", b""))
    num_shards = header.get(1, [1])[0]
    if header.get(2, [0])[0] != 0:
        raise CheckpointError("big-endian TF checkpoints are not supported")
    entries = {}
    for name, value in raw.items():
        proto = _parse_proto(value)
        if 7 in proto:
            raise CheckpointError(f"{name}: partitioned (sliced) variables are not supported")
        dtype_code = proto.get(1, [0])[0]
        if dtype_code == _DT_STRING:
            continue  # string tensors (none in DeepFill checkpoints) are skipped
        if dtype_code not in _DTYPES:
            raise CheckpointError(f"{name}: unsupported TF dtype enum {dtype_code}")
        shape_proto = _parse_proto(proto.get(2, [b""])[0])
        shape = tuple(_signed64(_parse_proto(d).get(1, [0])[0]) for d in shape_proto.get(2, []))
        entries[name] = dict(dtype=np.dtype(_DTYPES[dtype_code]), shape=shape,
                             shard=proto.get(3, [0])[0], offset=proto.get(4, [0])[0],
                             size=proto.get(5, [0])[0], crc32c=proto.get(6, [None])[0])
    return entries, prefix, num_shards


def read_tf_checkpoint(path) -> dict:
    """Read every tensor of a TF (V2 bundle) checkpoint with numpy only: {name: np.ndarray}.

    `path`: checkpoint directory, `snap-N` prefix, or its .index file."""
    entries, prefix, num_shards = _tf_entries(path)
    shards, out = {}, {}
    try:
        for name, entry in sorted(entries.items()):
            shard = entry["shard"]
            if shard not in shards:
                data_path = data_path_of(prefix, shard, num_shards)
                if not os.path.isfile(data_path):
                    raise CheckpointError(f"checkpoint data file missing: {data_path}")
                shards[shard] = np.memmap(data_path, dtype=np.uint8, mode="r")
            count = int(np.prod(entry["shape"], dtype=np.int64))
            nbytes = count * entry["dtype"].itemsize
            if nbytes != entry["size"]:
                raise CheckpointError(f"{name}: index says {entry['size']} bytes, shape {entry['shape']} "
                                      f"{entry['dtype']} needs {nbytes}")
            raw = shards[shard][entry["offset"]:entry["offset"] + nbytes]
            if raw.size != nbytes:
                raise CheckpointError(f"{name}: data shard {shard} is truncated")
            data = raw.tobytes()
            if entry["crc32c"] is not None and _crc32c(data) != _unmask_crc(entry["crc32c"]):
                raise CheckpointError(f"{data_path_of(prefix, shard, num_shards)}: tensor {name} does not "
                                      "match its checksum in the .index (corrupt file; download or copy "
                                      "it again)")
            out[name] = np.frombuffer(data, dtype=entry["dtype"].newbyteorder("<")).astype(
                entry["dtype"]).reshape(entry["shape"])
    finally:
        shards.clear()
    check_finite(out, prefix, CheckpointError)
    return out


def data_path_of(prefix, shard, num_shards):
    """The data file of ``shard`` of a bundle checkpoint: ``<prefix>.data-SSSSS-of-NNNNN``."""
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def is_native_file(path) -> bool:
    return pathlib.Path(path).is_file() and str(path).endswith(".npz")


def save_native(path, variables: dict, config: dict | None = None, extra: dict | None = None):
    """Write {name: array} to a native .npz atomically, with a manifest naming the format."""
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        raise CheckpointError(f"native checkpoints are .npz files, got {path}")
    manifest = dict(format=NATIVE_FORMAT, names=sorted(variables), config=config or {}, extra=extra or {})
    arrays = {name: np.asarray(value) for name, value in variables.items()}
    if MANIFEST_KEY in arrays:
        raise CheckpointError(f"variable name {MANIFEST_KEY} is reserved")
    arrays[MANIFEST_KEY] = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    write_atomic(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
    return path


def load_native(path):
    """Read a native .npz -> ({name: array}, manifest dict)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"native checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if MANIFEST_KEY not in data.files:
                raise CheckpointError(f"{path} has no {MANIFEST_KEY} entry: not a GONE inpaint checkpoint")
            manifest = json.loads(bytes(data[MANIFEST_KEY]).decode("utf-8"))
            if not isinstance(manifest, dict):
                raise CheckpointError(f"{path}: malformed {MANIFEST_KEY} entry")
            if manifest.get("format") != NATIVE_FORMAT:
                raise CheckpointError(f"{path}: unknown native format {manifest.get('format')!r}")
            # each member is read whole, so zipfile checks its CRC-32 here
            variables = {name: data[name] for name in data.files if name != MANIFEST_KEY}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable native checkpoint (truncated or corrupt: "
                              f"{type(e).__name__}: {e})") from None
    check_finite(variables, path, CheckpointError)
    return variables, manifest


def read_checkpoint(path) -> dict:
    """Variables of either a native .npz or a TF checkpoint (directory / prefix)."""
    if is_native_file(path):
        return load_native(path)[0]
    return read_tf_checkpoint(path)


def _assign(owner_name, owned: dict, variables: dict, strict: bool, what: str):
    prefix = owner_name + "/"
    provided = {n: v for n, v in variables.items() if n.startswith(prefix) and not _OPTIMIZER_SLOT.search(n)}
    missing = sorted(set(owned) - set(provided))
    unexpected = sorted(set(provided) - set(owned))
    if missing or (unexpected and strict):
        lines = [f"checkpoint does not match the {what} ({len(owned)} variables under '{prefix}')"]
        if missing:
            lines.append(f"missing from the checkpoint ({len(missing)}): " + ", ".join(missing))
        if unexpected:
            lines.append(f"unexpected in the checkpoint ({len(unexpected)}): " + ", ".join(unexpected))
        raise CheckpointError("\n  ".join(lines))
    bad = [f"{n}: checkpoint {tuple(np.shape(provided[n]))} vs model {tuple(v.shape)}"
           for n, v in owned.items() if tuple(np.shape(provided[n])) != tuple(v.shape)]
    if bad:
        raise CheckpointError("shape mismatch between checkpoint and model:\n  " + "\n  ".join(bad))
    for name, var in owned.items():
        var.assign(np.asarray(provided[name], dtype=var.dtype))
    return sorted(owned)


def assign_generator_weights(generator, variables: dict, strict: bool = True):
    """Assign the `inpaint_net/*` entries of `variables` to the generator by name.

    Other groups (discriminator/*, global_step, optimizer slots) are ignored. Raises CheckpointError
    listing missing names (always) and unexpected `inpaint_net/*` names (when strict)."""
    if isinstance(variables, (str, os.PathLike)):
        variables = read_checkpoint(variables)
    return _assign(generator.name, generator.checkpoint_variables(), variables, strict, "generator")


def generator_variables_numpy(generator) -> dict:
    return {name: np.asarray(v.numpy() if hasattr(v, "numpy") else v)
            for name, v in generator.checkpoint_variables().items()}
