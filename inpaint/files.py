"""Atomic file writing for inpaint/: the repository's one implementation, ``gonefiles.write_atomic``
(a temp file beside the target, renamed onto it, with the user's umask; numpy/Pillow-only, so a
model package may use it, unlike gone.io)."""
from gonefiles.atomic import write_atomic

__all__ = ["write_atomic"]
