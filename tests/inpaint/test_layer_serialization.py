"""Every custom DeepFill v1 layer (inpaint.ops, inpaint.generator) has a complete get_config:
serialized (JSON) and deserialized, it is the same layer, with the same variables, and computes
the same outputs, of the documented shapes (a keras-hub-style layer harness)."""
import json

import keras
import numpy as np
import pytest

from inpaint.generator import InpaintGenerator
from inpaint.ops import GenConv, GenDeconv

pytestmark = pytest.mark.jax   # the layers are backend-neutral (keras.ops)

RNG = np.random.default_rng(0)
X = RNG.uniform(-1, 1, (2, 16, 24, 5)).astype(np.float32)


def _hole(b, h, w):
    mask = np.zeros((b, h, w, 1), np.float32)
    mask[:, h // 4:3 * h // 4, w // 4:3 * w // 4] = 1.0
    return mask


# name -> (layer factory, inputs, expected output shape(s))
CASES = {
    "GenConv same elu": (lambda: GenConv(4, 3, name="c1"), X, (2, 16, 24, 4)),
    "GenConv stride 2 linear": (lambda: GenConv(3, 5, 2, activation=None, name="c2"), X,
                                (2, 8, 12, 3)),
    "GenConv dilated reflect": (lambda: GenConv(6, 3, 1, 2, padding="REFLECT", name="c3"), X,
                                (2, 16, 24, 6)),
    "GenConv symmetric relu": (lambda: GenConv(2, 3, padding="SYMMETRIC", activation="relu",
                                               name="c4"), X, (2, 16, 24, 2)),
    "GenDeconv": (lambda: GenDeconv(4, name="up"), X, (2, 32, 48, 4)),
    "InpaintGenerator": (lambda: InpaintGenerator(),
                         [X[..., :3] * (1 - _hole(2, 16, 24)), _hole(2, 16, 24)],
                         [(2, 16, 24, 3), (2, 16, 24, 3), (2, 4, 6, 3)]),   # flow: H/4 x W/4
}


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    make, inputs, shapes = CASES[request.param]
    layer = make()
    return layer, inputs, shapes, layer(inputs)


def test_output_shapes(case):
    _, _, shapes, outputs = case
    got = [tuple(o.shape) for o in keras.tree.flatten(outputs)]
    assert got == (shapes if isinstance(shapes, list) else [shapes])


def test_config_round_trip_gives_the_same_layer_and_outputs(case):
    layer, inputs, _, expected = case
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    restored = keras.saving.deserialize_keras_object(serialized)
    as_json = lambda config: json.loads(json.dumps(config))  # noqa: E731  (tuples -> lists)
    assert type(restored) is type(layer)
    assert as_json(restored.get_config()) == as_json(layer.get_config())
    restored(inputs)   # builds the variables
    assert [v.path for v in restored.weights] == [v.path for v in layer.weights]
    assert [v.shape for v in restored.weights] == [v.shape for v in layer.weights]
    restored.set_weights(layer.get_weights())
    for e, g in zip(keras.tree.flatten(expected), keras.tree.flatten(restored(inputs))):
        np.testing.assert_array_equal(_numpy(g), _numpy(e))


def test_bad_padding_is_refused():
    with pytest.raises(ValueError, match="padding must be one of"):
        GenConv(4, 3, padding="wrap")
