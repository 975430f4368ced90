"""Fixtures of the LaMa tests: the golden data of ../shared/reference/lama and the full-size
big-lama random weights, made once per test session by the reference's numpy-only make_weights.py."""
import io
import pickle
import types
import zipfile

import numpy as np
import pytest


def nhwc(a):
    return np.transpose(a, (0, 2, 3, 1))


# ------------------------------------------------------------------ crafted torch checkpoints
class Global:
    """A global reference `module.name` written as a pickle GLOBAL opcode (nothing is imported)."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """`func(*args)` written as REDUCE; with `state`, followed by BUILD (setstate)."""

    def __init__(self, func, args=(), state=None):
        self.func, self.args, self.state = func, tuple(args), state


class Tensor:
    """A torch tensor as torch.save pickles it: _rebuild_tensor_v2 over a storage entry."""

    def __init__(self, array, numel=None, size=None):
        self.array = np.array(array, order="C")
        self.numel = self.array.size if numel is None else numel
        self.size = self.array.shape if size is None else size


_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage",
            np.dtype("float16"): "HalfStorage", np.dtype("float64"): "DoubleStorage"}


class _CraftPickler(pickle._Pickler):
    def __init__(self, file, storages, byteorder):
        super().__init__(file, protocol=2)
        self.storages, self.byteorder = storages, byteorder

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, Call):
            self.save(obj.func)
            self.save(obj.args)
            self.write(pickle.REDUCE)
            if obj.state is not None:
                self.save(obj.state)
                self.write(pickle.BUILD)
        elif isinstance(obj, Tensor):
            key = str(len(self.storages))
            a = obj.array
            data = a.astype(a.dtype.newbyteorder("<" if self.byteorder == "little" else ">")).tobytes()
            self.storages[key] = data
            strides = tuple(s // a.itemsize for s in a.strides) if a.ndim else ()
            storage = ("storage", Global("torch", _STORAGE[a.dtype]), key, "cpu", obj.numel)
            self.save(Global("torch._utils", "_rebuild_tensor_v2"))
            self.write(pickle.MARK)
            self.save_pers(storage)
            for item in (0, tuple(obj.size), strides, False, Call(Global("collections", "OrderedDict"))):
                self.save(item)
            self.write(pickle.TUPLE + pickle.REDUCE)
        else:
            super().save(obj, save_persistent_id)


def write_torch_zip(path, obj, byteorder="little", name="archive"):
    """Write `obj` in torch.save's zip layout (data.pkl + data/<key> + byteorder), pickle protocol 2.
    `Global`, `Call` and `Tensor` stand for torch objects; nothing of torch is needed."""
    buf = io.BytesIO()
    storages = {}
    _CraftPickler(buf, storages, byteorder).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", buf.getvalue())
        z.writestr(f"{name}/byteorder", byteorder)
        for key, data in storages.items():
            z.writestr(f"{name}/data/{key}", data)
        z.writestr(f"{name}/version", "3\n")
    return path


def lightning_checkpoint(state_dict, **extra):
    """A Lightning-style checkpoint dict with `state_dict` (an OrderedDict of tensors)."""
    sd = Call(Global("collections", "OrderedDict"), ([(k, Tensor(v)) for k, v in state_dict.items()],))
    out = {"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.2.9", "state_dict": sd}
    out.update(extra)
    return out


@pytest.fixture(scope="session")
def small_state(lama_reference_dir):
    """The reduced reference generator's state dict ('generator.…' keys, numpy), read by our reader."""
    from lama.checkpoint import read_torch_checkpoint

    obj = read_torch_checkpoint(lama_reference_dir / "lama_generator_random_small.ckpt")
    return dict(obj["state_dict"])


@pytest.fixture(scope="session")
def small_generator_yaml(lama_reference_dir):
    with np.load(lama_reference_dir / "infer_cases_small.npz") as z:
        return str(z["meta/generator_config_yaml"])


@pytest.fixture(scope="session")
def tz():
    """Helpers that write crafted torch zip checkpoints (no torch needed)."""
    return types.SimpleNamespace(Global=Global, Call=Call, Tensor=Tensor, write=write_torch_zip,
                                 lightning=lightning_checkpoint)
