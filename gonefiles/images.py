"""Image reading (one implementation for the repository) and atomic image writers.

``read_image`` always returns RGB uint8 HxWx3:

- EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so the pixels are upright;
- grayscale (L, 1, LA) is replicated to RGB; palette images are expanded;
- 16-bit data (I;16*, I) is scaled to 8 bit by ``round(v / 257)`` (65535 -> 255); float (F)
  data is taken as [0, 1] when its maximum is <= 1, else as [0, 255], and clipped;
- an alpha channel is composited on **white** (transparent areas become white, the usual
  convention for photos exported with transparency); the output has no alpha;
- CMYK / YCbCr and other modes go through Pillow's RGB conversion;
- animated files (GIF, APNG, WebP, multi-page TIFF): the first frame; ``LoadedImage.frames``
  says how many there were, so callers can tell the user;
- unreadable, truncated or non-image files raise ``ImageReadError`` with the file name and reason.

Every image and mask file goes through ``open_image`` (one guarded reader): Pillow's
decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is an error, not a warning, and a size
the caller expects (a mask must match its image) is compared with the **header** (Pillow's
``Image.open`` reads only the header) before any pixel is decoded, so a small file claiming a huge
size costs neither memory nor time; either way the caller gets one ``ImageReadError`` line.
"""
from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import warnings

import numpy as np

from gonefiles.atomic import write_fileobj_atomic

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".pnm", ".jp2", ".tga")


class ImageReadError(Exception):
    """An input file cannot be read as an image (missing, corrupt, truncated, unsupported)."""


@dataclasses.dataclass
class LoadedImage:
    rgb: np.ndarray          # uint8 HxWx3, upright
    format: str | None       # Pillow format name of the source (e.g. "JPEG", "PNG")
    mode: str                # Pillow mode of the source (e.g. "RGB", "I;16", "RGBA")
    high_bit_depth: bool     # source had more than 8 bits per sample
    frames: int = 1          # frames in the file (animated GIF/PNG/WebP, multi-page TIFF); rgb = first
    exif: bytes | None = None          # the source's EXIF, no orientation, thumbnail, maker note
    icc_profile: bytes | None = None   # the source's ICC profile when it describes RGB pixels

    @property
    def note(self) -> str:
        """One line for the user about what was not used, or ''."""
        if self.frames > 1:
            return f"animated ({self.frames} frames): only the first frame is used"
        return ""


def _to_rgb_uint8(im):
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        # Pillow decodes 16-bit grayscale PNG/TIFF as I;16 or I; scale 0..65535 -> 0..255.
        rgb = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(rgb[..., None], 3, axis=-1)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 if np.nanmax(arr) <= 1.0 else 1.0
        rgb = np.clip(np.round(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)
        return np.repeat(rgb[..., None], 3, axis=-1)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)   # composite on white
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _upright_exif(raw):
    """The EXIF block to store with the upright output, or None: the orientation tag removed, and
    re-serialised by Pillow, which writes the main directory (with its Exif / GPS sub-directories)
    only, so the embedded thumbnail (IFD1) goes; the maker note goes too. Both can hold a preview
    of the photo as it was, people included."""
    from PIL import Image
    if not raw or not isinstance(raw, bytes):
        return None
    try:
        exif = Image.Exif()
        exif.load(raw)
        exif.pop(0x0112, None)                       # Orientation
        exif.get_ifd(0x8769).pop(0x927C, None)       # Exif IFD: MakerNote
        return exif.tobytes()
    except Exception:   # a damaged EXIF block is dropped, not a reason to refuse the photo
        return None


def _header_size(path):
    """(width, height) from the file's header by Pillow's own format plugins, without the pixel
    limit that ``Image.open`` applies (which refuses a huge header before its size is known);
    nothing is decoded. None when no plugin reads it."""
    from PIL import Image
    Image.init()
    try:
        with open(path, "rb") as fp:
            prefix = fp.read(16)
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                if accept is not None and not accept(prefix):
                    continue
                fp.seek(0)
                try:
                    return tuple(factory(fp, str(path)).size)
                except Exception:
                    continue
    except OSError:
        return None
    return None


@contextlib.contextmanager
def open_image(path, size=None, what="image"):
    """``with open_image(path) as im:`` -- the repository's guarded ``PIL.Image.open``.

    ``size`` (width, height), when given, must match the header's size (either orientation, since
    EXIF rotation is applied only after decoding); it is checked before any pixel is decoded.
    Every failure inside the block -- missing file, not an image, over Pillow's pixel limit, a
    size mismatch, corrupt or truncated data -- becomes one ``ImageReadError`` naming the file."""
    from PIL import Image, UnidentifiedImageError
    path = pathlib.Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not {'an image' if what == 'image' else 'a ' + what}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if size is not None and tuple(im.size) not in (tuple(size), tuple(size)[::-1]):
                    w, h = im.size
                    raise ImageReadError(f"{path}: {what} is {w}x{h} but the image is {size[0]}x{size[1]}")
                yield im
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if size is not None:   # Pillow refuses before its size can be compared: name both sizes
            w_h = _header_size(path)
            shown = f"{w_h[0]}x{w_h[1]}" if w_h else "over Pillow's pixel limit"
            raise ImageReadError(f"{path}: {what} is {shown} (refused before decoding) but the image "
                                 f"is {size[0]}x{size[1]}") from None
        raise ImageReadError(f"{path}: {what} too large ({e})") from None
    except MemoryError:
        raise ImageReadError(f"{path}: {what} too large to decode (out of memory)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError) as e:
        raise ImageReadError(f"{path}: corrupt or truncated {what} ({e})") from None


def load_image(path):
    """Read ``path`` -> LoadedImage (pixels plus what a writer needs to keep the format)."""
    from PIL import ImageOps
    with open_image(path) as im:
        fmt = im.format
        frames = int(getattr(im, "n_frames", 1) or 1)
        im.load()  # forces full decoding of the first frame: truncated data fails here
        mode = im.mode
        im = ImageOps.exif_transpose(im)   # also drops the orientation tag from info["exif"]
        exif = _upright_exif(im.info.get("exif"))
        # an ICC profile of gray or CMYK pixels would be wrong for the RGB output
        icc = im.info.get("icc_profile") or None if mode in RGB_PROFILE_MODES else None
        rgb = _to_rgb_uint8(im)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageReadError(f"{path}: empty image")
    high = mode.startswith("I") or mode == "F" or mode.endswith(";16") or "16" in mode
    return LoadedImage(rgb=rgb, format=fmt, mode=mode, high_bit_depth=bool(high), frames=frames,
                       exif=exif,
                       icc_profile=icc if isinstance(icc, bytes) else None)


def read_image(path):
    """RGB uint8 HxWx3 (see the module docstring); raises ImageReadError."""
    return load_image(path).rgb


def output_format_for(path, source: LoadedImage | None = None):
    """(extension, Pillow format) for an output that keeps the input's format where Pillow can
    write it; 16-bit sources, GIF (256 colours) and unwritable formats become PNG."""
    from PIL import Image
    Image.init()
    ext = pathlib.Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if source is not None and source.high_bit_depth:
        return ".png", "PNG"
    if fmt is None or fmt not in Image.SAVE or fmt in ("GIF",):
        return ".png", "PNG"
    return ext, fmt


# Pillow formats whose writer stores an EXIF block and an ICC profile (``save(exif=, icc_profile=)``).
METADATA_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
RGB_PROFILE_MODES = ("RGB", "RGBA", "RGBX", "P", "PA")


def write_image_atomic(path, rgb, format=None, quality=95, exif=None, icc_profile=None):
    """Write RGB uint8 HxWx3 to ``path`` atomically; the format follows the extension unless given.
    ``exif`` / ``icc_profile`` (bytes, e.g. ``LoadedImage.exif``) are stored where the format has
    room for them (``METADATA_FORMATS``) and dropped elsewhere."""
    from PIL import Image
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"write_image_atomic expects RGB uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
    if format is None:
        _, format = output_format_for(path)
    im = Image.fromarray(rgb, "RGB")
    kwargs = {"quality": quality} if format in ("JPEG", "WEBP") else {}
    if format in METADATA_FORMATS:
        kwargs.update({k: v for k, v in (("exif", exif), ("icc_profile", icc_profile)) if v})
    return write_fileobj_atomic(path, lambda f: im.save(f, format=format, **kwargs))


def write_mask_atomic(path, hole):
    """Write a bool HxW hole as an 8-bit PNG, 255 = hole, 0 = kept."""
    from PIL import Image
    hole = np.asarray(hole, dtype=bool)
    im = Image.fromarray(hole.astype(np.uint8) * 255, "L")
    return write_fileobj_atomic(path, lambda f: im.save(f, format="PNG"))


def read_mask(path, shape=None):
    """A hole mask file -> bool HxW: > 127.5 = hole (white), as Yu et al.'s test.py, which reads
    the mask with cv2.imread and thresholds channel 0 of that BGR array (``masks[..., 0:1] >
    127.5`` in build_server_graph); so a colour mask counts its **blue** channel, and an alpha
    channel is ignored. ``shape`` (H, W) is checked if given: against the file's header before
    decoding (``open_image``), and again after the EXIF rotation."""
    from PIL import ImageOps
    size = None if shape is None else (int(shape[1]), int(shape[0]))
    with open_image(path, size=size, what="mask") as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            arr = np.asarray(im, dtype=np.float64) / 257.0
        elif im.mode == "F":
            arr = np.asarray(im, dtype=np.float64)
            arr = arr * 255.0 if np.nanmax(arr) <= 1.0 else arr
        else:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64)[..., 2]   # BGR channel 0
    hole = arr > 127.5
    if shape is not None and hole.shape != tuple(shape[:2]):
        raise ImageReadError(f"{path}: mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                             f"{shape[1]}x{shape[0]}")
    return hole
