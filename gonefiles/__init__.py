"""The repository's one atomic-write, image-read and weight-check implementation.

Depends on the standard library, numpy and Pillow only, so every package (``mrcnn``, ``inpaint``,
``gone``, ``data_prep``, ``experiments``, scripts) may import it without breaking the layering.

- ``gonefiles.atomic``: write to a temp file beside the target, then ``os.replace`` onto it, with
  the user's umask; the temp file is removed on any exception (a full disk, Ctrl-C, SIGTERM turned
  into KeyboardInterrupt), and temp files left by a killed process are removed by
  ``clean_stale_temps``.
- ``gonefiles.images``: ``read_image`` / ``load_image`` (upright RGB uint8 from any Pillow-readable
  file), ``read_mask``, the guarded ``open_image`` both go through (Pillow's pixel limit is an
  error; a mask's size is checked from the header before decoding), and atomic image / mask writers.
- ``gonefiles.weights``: ``check_finite``, the NaN/Inf refusal every weight-file reader applies.
"""
from gonefiles.atomic import (TEMP_MARK, clean_stale_temps, copy_file_atomic, is_temp_name, write_atomic,
                              write_bytes_atomic, write_fileobj_atomic, write_text_atomic)
from gonefiles.images import (IMAGE_EXTENSIONS, ImageReadError, LoadedImage, load_image, open_image,
                              output_format_for, read_image, read_mask, write_image_atomic, write_mask_atomic)
from gonefiles.weights import check_finite

__all__ = ["TEMP_MARK", "clean_stale_temps", "copy_file_atomic", "is_temp_name", "write_atomic",
           "write_bytes_atomic", "write_fileobj_atomic", "write_text_atomic", "IMAGE_EXTENSIONS",
           "ImageReadError", "LoadedImage", "load_image", "open_image", "output_format_for", "read_image",
           "read_mask", "write_image_atomic", "write_mask_atomic", "check_finite"]
