"""DeepFill v1 configuration with the original `inpaint.yml` field names and defaults.

Field names and values follow `inpaint.yml` of JiahuiYu/generative_inpainting v1.0.0 (read through
neuralgym's Config); LEARNING_RATE, ADAM_* and CRITIC_STEPS are values that the original train.py
hard-codes (Adam(1e-4, beta1=0.5, beta2=0.9), 5 critic updates per generator update) and that we
make explicit. Load from YAML (`InpaintConfig.from_yaml`), write back (`to_yaml`), and override
from a dict of command-line flags (`override`).
"""
from __future__ import annotations

import dataclasses
import pathlib
import typing

import yaml

from gonefiles.atomic import write_atomic

DEFAULT_YAML = pathlib.Path(__file__).with_name("inpaint.yml")


def _default_flist():
    return {
        "celebahq": ["data/celeba_hq/train_shuffled.flist", "data/celeba_hq/validation_static_view.flist"],
        "celeba": ["data/celeba/train_shuffled.flist", "data/celeba/validation_static_view.flist"],
        "places2": ["data/places2/train_shuffled.flist", "data/places2/validation_static_view.flist"],
        "imagenet": ["data/imagenet/train_shuffled.flist", "data/imagenet/validation_static_view.flist"],
    }


@dataclasses.dataclass
class InpaintConfig:
    # parameters
    DATASET: str = "celebahq"
    RANDOM_CROP: bool = False
    VAL: bool = False
    LOG_DIR: str = "full_model_celeba_hq_256"
    MODEL_RESTORE: str = ""
    GAN: str = "wgan_gp"
    PRETRAIN_COARSE_NETWORK: bool = False
    GAN_LOSS_ALPHA: float = 0.001
    WGAN_GP_LAMBDA: float = 10.0
    COARSE_L1_ALPHA: float = 1.2
    L1_LOSS_ALPHA: float = 1.2
    AE_LOSS_ALPHA: float = 1.2
    GAN_WITH_MASK: bool = False
    DISCOUNTED_MASK: bool = True
    RANDOM_SEED: bool = False
    PADDING: str = "SAME"
    # training
    NUM_GPUS: int = 1
    GPU_ID: int = -1
    TRAIN_SPE: int = 10000
    MAX_ITERS: int = 1000000
    VIZ_MAX_OUT: int = 10
    GRADS_SUMMARY: bool = False
    GRADIENT_CLIP: bool = False
    GRADIENT_CLIP_VALUE: float = 0.1
    VAL_PSTEPS: int = 1000
    # data
    DATA_FLIST: dict = dataclasses.field(default_factory=_default_flist)
    STATIC_VIEW_SIZE: int = 30
    IMG_SHAPES: list = dataclasses.field(default_factory=lambda: [256, 256, 3])
    HEIGHT: int = 128
    WIDTH: int = 128
    MAX_DELTA_HEIGHT: int = 32
    MAX_DELTA_WIDTH: int = 32
    BATCH_SIZE: int = 16
    VERTICAL_MARGIN: int = 0
    HORIZONTAL_MARGIN: int = 0
    # loss
    AE_LOSS: bool = True
    L1_LOSS: bool = True
    GLOBAL_DCGAN_LOSS_ALPHA: float = 1.0
    GLOBAL_WGAN_LOSS_ALPHA: float = 1.0
    # loss legacy (unused by v1 training, kept so the original yml round-trips)
    LOAD_VGG_MODEL: bool = False
    VGG_MODEL_FILE: str = "data/model_zoo/vgg16.npz"
    FEATURE_LOSS: bool = False
    GRAMS_LOSS: bool = False
    TV_LOSS: bool = False
    TV_LOSS_ALPHA: float = 0.0
    FEATURE_LOSS_ALPHA: float = 0.01
    GRAMS_LOSS_ALPHA: float = 50.0
    SPATIAL_DISCOUNTING_GAMMA: float = 0.9
    # ours: explicit optimiser settings that the original train.py hard-codes
    LEARNING_RATE: float = 1e-4
    ADAM_BETA1: float = 0.5
    ADAM_BETA2: float = 0.9
    ADAM_EPSILON: float = 1e-8
    CRITIC_STEPS: int = 5

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ construction
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: typing.Mapping, strict: bool = True) -> "InpaintConfig":
        return cls().override(values, strict=strict)

    @classmethod
    def from_yaml(cls, path=None, strict: bool = True) -> "InpaintConfig":
        """Read a yml in the original format (default: our copy of the v1.0.0 inpaint.yml).

        Unknown keys raise a ValueError listing them unless strict=False (then they are ignored)."""
        path = pathlib.Path(path) if path is not None else DEFAULT_YAML
        if not path.is_file():
            raise FileNotFoundError(f"inpaint config file not found: {path}")
        with open(path, encoding="utf-8") as fh:
            values = yaml.safe_load(fh) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of NAME: value, got {type(values).__name__}")
        return cls.from_dict(values, strict=strict)

    def override(self, flags: typing.Mapping, strict: bool = True) -> "InpaintConfig":
        """Return a copy with `flags` applied. Keys are case-insensitive (`batch_size` or
        `BATCH_SIZE`); string values are parsed as YAML scalars/lists (`"1e-4"`, `"[256,256,3]"`,
        `"true"`) and converted to the field's type. None values are skipped (unset flags)."""
        names = {n.upper(): n for n in self.field_names()}
        updates, unknown = {}, []
        for key, value in flags.items():
            name = names.get(str(key).upper())
            if name is None:
                unknown.append(key)
                continue
            if value is None:
                continue
            updates[name] = _coerce(name, value, self.__dataclass_fields__[name].type)
        if unknown and strict:
            raise ValueError(f"unknown inpaint config field(s): {sorted(map(str, unknown))}; "
                             f"known fields: {', '.join(self.field_names())}")
        return dataclasses.replace(self, **updates)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self, path=None) -> str:
        """YAML text of every field; written atomically to `path` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            write_atomic(path, lambda tmp: pathlib.Path(tmp).write_text(text, encoding="utf-8"))
        return text

    def validate(self):
        if self.PADDING not in ("SAME", "SYMMETRIC", "REFELECT", "REFLECT"):
            raise ValueError(f"PADDING must be SAME, SYMMETRIC or REFELECT (sic, as in the original), "
                             f"got {self.PADDING!r}")
        if len(self.IMG_SHAPES) != 3:
            raise ValueError(f"IMG_SHAPES must be [height, width, channels], got {self.IMG_SHAPES!r}")
        if self.BATCH_SIZE < 1 or self.CRITIC_STEPS < 1:
            raise ValueError("BATCH_SIZE and CRITIC_STEPS must be >= 1")


_TYPES = {"str": str, "bool": bool, "float": float, "int": int, "list": list, "dict": dict}


def _coerce(name, value, type_name):
    kind = _TYPES.get(type_name if isinstance(type_name, str) else type_name.__name__)
    if isinstance(value, str) and kind is not str:
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"{name}: cannot parse {value!r}: {exc}") from None
        if kind is float and isinstance(value, str):  # PyYAML reads "1e-4" as a string (YAML 1.1)
            try:
                value = float(value)
            except ValueError:
                pass
    try:
        if kind is bool:
            if not isinstance(value, (bool, int)):
                raise TypeError
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer() or isinstance(value, bool):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is list:
            return list(value)
        if kind is dict:
            return dict(value)
        return "" if value is None else str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {kind.__name__}, got {value!r}") from None
