"""Quiet TensorFlow / JAX start-up: defined once in gonefiles/quiet.py (the lowest layer, so that
mrcnn and inpaint use it too); re-exported here for gone's modules."""
from gonefiles.quiet import (NOISE, filter_native_stderr, import_backend_quietly,  # noqa: F401
                             is_terminal, progbar, quiet_backend_import,
                             quiet_native_stderr, set_backend_environment)
