#!/usr/bin/env bash
# The project's test command: the whole suite on TensorFlow (the default backend), then the
# tests of Keras code (marker `jax`) on JAX. Extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
KERAS_BACKEND=tensorflow python3 -m pytest -q "$@"; tf_rc=$?
KERAS_BACKEND=jax python3 -m pytest -q -m jax "$@"; jax_rc=$?
[ $jax_rc -eq 5 ] && jax_rc=0   # 5 = no test selected
echo "tensorflow suite: exit $tf_rc; jax subset: exit $jax_rc"
[ $tf_rc -eq 0 ] && [ $jax_rc -eq 0 ]
