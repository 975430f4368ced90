"""Image reading and atomic writing for ``gone`` (stage 1 and last stage of the pipeline).

The implementation lives in the top-level ``gonefiles`` package (numpy/Pillow only), shared by
every package of the repository; this module keeps the names ``gone`` code and users import.
See ``gonefiles.images`` for what ``read_image`` returns (upright RGB uint8, alpha on white,
16-bit scaled, first frame of animations) and ``gonefiles.atomic`` for the writes (temp file +
rename, user's umask, temp files removed on errors and by the next run after a kill).
"""
from __future__ import annotations

from gonefiles.atomic import (TEMP_MARK, clean_stale_temps, copy_file_atomic, is_temp_name,  # noqa: F401
                              write_atomic, write_bytes_atomic, write_fileobj_atomic, write_text_atomic)
from gonefiles.images import (IMAGE_EXTENSIONS, ImageReadError, LoadedImage, load_image,  # noqa: F401
                              open_image, output_format_for, read_image, read_mask, write_image_atomic,
                              write_mask_atomic)
