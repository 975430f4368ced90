"""Run by test_trainer_data_parallel.py in a fresh process (the device count is fixed at start-up):
one critic step and one generator step of the same global batch on 1 device and on 2 virtual CPU
devices (data parallel); prints the losses and the largest weight difference as JSON.
`generator-only` as second argument skips the critic step (one traced step per trainer)."""
import json
import os
import sys

backend = sys.argv[1]
critic_step = sys.argv[2:] != ["generator-only"]
os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if backend == "jax":
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import keras  # noqa: E402

from inpaint.config import InpaintConfig  # noqa: E402
from inpaint.trainer import InpaintTrainer  # noqa: E402

warnings.simplefilter("ignore")
config = InpaintConfig().override(dict(IMG_SHAPES=[64, 64, 3], HEIGHT=32, WIDTH=32, MAX_DELTA_HEIGHT=8,
                                       MAX_DELTA_WIDTH=8, BATCH_SIZE=2, CRITIC_STEPS=1))
rng = np.random.default_rng(0)
batch = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
mask = np.zeros((1, 64, 64, 1), np.float32)
mask[:, 20:44, 16:40] = 1.0
tl = np.array([16, 12], np.int32)
alphas = rng.random((2, 1), dtype=np.float32), rng.random((2, 1), dtype=np.float32)
results = {}
if backend == "tensorflow":
    devices = len(tf.config.list_logical_devices("CPU"))
else:
    import jax
    devices = len(jax.devices())
for name, distribution in (("single", None), ("data_parallel", "data_parallel")):
    trainer = InpaintTrainer(config, log_dir="/tmp/unused", seed=0, distribution=distribution, verbose=0)
    d = trainer.critic_update(batch, mask, tl, *alphas) if critic_step else None
    g, _, _ = trainer.generator_update(batch, mask, tl)
    trainer.sync_to_keras()
    losses = {"g_loss": g["g_loss"], **({"d_loss": d["d_loss"]} if d is not None else {})}
    results[name] = {**{k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()},
                     "weights": [np.asarray(keras.ops.convert_to_numpy(v)) for v in
                                 trainer.generator.trainable_variables[:4] + trainer.critics.trainable_variables[:4]]}
diffs = np.concatenate([np.abs(a - b).reshape(-1) for a, b in zip(results["single"]["weights"],
                                                                  results["data_parallel"]["weights"])])
# Adam's first steps are ~lr * sign(g): an element whose gradient is ~0 may flip by 2 lr
diff = float(np.mean(diffs > 1e-6))
print("RESULT " + json.dumps({"devices": devices, "replicas": trainer.replicas,
                              **{f"{k}_{n}": results[n][k] for n in results for k in losses},
                              "fraction_weights_differing": diff}))
