"""``gone app``: remove people from photos in the browser (Flask; JSON API in docs/app.md).

The server keeps one detector and one inpainter of each kind per process, shared by every
request; inference (detection and inpainting) runs under one lock, so a second request waits for
the first instead of loading a second model. Each browser tab is a *session* (a random token sent
in the ``X-Gone-Session`` header: a page of another site cannot read it, so it cannot drive the
app); its photos and results live in a per-session folder under one temporary folder, removed when
the server stops. Clients name photos and results only by opaque ids: nothing a client sends is
ever used as a file path. ``PHOTOS_DIR`` files are listed (recursively, symlinks leaving it
ignored) under opaque ids too.

Same bytes as the CLI: the hole is ``gone.subject.hole_without`` of the instances set to
*remove* (the pipeline's hole strategy) plus the brush minus the eraser, the pipeline is
``PeopleRemover.remove`` with that hole, and the file is written by ``gone remove``'s writer
(``gone.outputs.write_job_outputs``), so the same photo, choices and inpainter give the same bytes as
``gone remove`` (``--keep subject`` or ``--masks`` with the same hole).
"""
from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import hashlib
import io
import os
import pathlib
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import warnings
import zipfile

import numpy as np

from gone import masks as _masks
from gone import subject as _subject
from gone import websafety

STATIC = pathlib.Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 40 * 1024 * 1024       # one request (a photo, or the brush edits)
MAX_PIXELS = 50_000_000                   # per photo, checked from the header before decoding
MAX_PHOTOS = 20                           # per session
MAX_SESSIONS = 32                         # the least recently used one is dropped beyond this
MAX_BROWSE = 2000                         # PHOTOS_DIR files listed
IMAGE_CACHE = 6                           # decoded photos kept in memory (all sessions)
CSP = ("default-src 'none'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
FORMAT_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif",
              "BMP": ".bmp", "GIF": ".gif", "PPM": ".ppm", "TGA": ".tga", "JPEG2000": ".jp2"}
BROWSER_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                 ".gif": "image/gif", ".bmp": "image/bmp"}
_ID = re.compile(r"^[a-z0-9]{1,40}$")


class AppError(Exception):
    """A request that cannot be served: one line for the page, with an HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


# ----------------------------------------------------------------------------------------------
# Models (one per process, used under one lock)

def default_detector():
    """Mask R-CNN with the cached COCO weights, as ``gone remove`` builds it by default."""
    from gone.models import check_detector_weights, load_detector
    from gone.weights import find_weight_file
    weights = find_weight_file("mask_rcnn_coco")
    check_detector_weights(weights)
    return load_detector(weights)


class Engine:
    """The shared models. ``detector``: an object with Matterport's ``detect`` (tests give a
    fake), or None to load Mask R-CNN on first use. ``busy`` counts requests running or waiting."""

    def __init__(self, detector=None, detector_factory=default_detector):
        self.lock = threading.Lock()
        self._detector = detector
        self._factory = detector_factory
        self._inpainters = {}
        self._count = threading.Lock()
        self.busy = 0
        self.detector_loads = 0

    def _enter(self):
        with self._count:
            self.busy += 1
        self.lock.acquire()

    def _leave(self):
        self.lock.release()
        with self._count:
            self.busy -= 1

    def detect(self, rgb):
        self._enter()
        try:
            if self._detector is None:
                try:
                    self._detector = self._factory()
                except Exception as err:   # missing weights, bad file: one line for the page
                    raise AppError(503, f"the detector cannot be loaded: {err}") from None
                self.detector_loads += 1
            from gone.pipeline import PeopleRemover
            return PeopleRemover(self._detector, None).detect([rgb])[0]
        finally:
            self._leave()

    def remove(self, rgb, hole, inpainter_kind, **pipeline_options):
        """``PeopleRemover.remove`` of one image with a given hole: (result, inpainter line)."""
        from gone.options import build_inpainter
        from gone.pipeline import LargeCropWarning, PeopleRemover
        self._enter()
        try:
            if inpainter_kind not in self._inpainters:
                try:
                    self._inpainters[inpainter_kind] = build_inpainter(inpainter_kind)
                except Exception as err:
                    raise AppError(503, f"the {inpainter_kind} inpainter cannot be built: {err}") from None
            remover = PeopleRemover(None, self._inpainters[inpainter_kind], **pipeline_options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LargeCropWarning)   # reported through the message
                (result,) = remover.remove([rgb], hole_masks=[hole])
            return result, remover.inpainter_description
        finally:
            self._leave()


# ----------------------------------------------------------------------------------------------
# Sessions

class ImageCache:
    """The decoded photos most recently used (at most ``size``): the others are decoded again
    from their stored copy when needed (the same pixels), so memory does not grow with the
    number of photos."""

    def __init__(self, size=IMAGE_CACHE):
        self.size = size
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, path, loaded=None):
        from gone.io import load_image
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        loaded = loaded if loaded is not None else load_image(path)
        with self._lock:
            self._items[path] = loaded
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return loaded


@dataclasses.dataclass
class Photo:
    id: str
    name: str                     # the client's file name, shown and used for the download name
    path: pathlib.Path            # stored copy (server-chosen name)
    cache: ImageCache
    detections: dict | None = None
    result: str | None = None     # id of the latest result

    @property
    def loaded(self):
        """gone.io.LoadedImage of the stored copy."""
        return self.cache.get(self.path)


@dataclasses.dataclass
class Result:
    id: str
    photo: str
    file: pathlib.Path            # the output as gone remove writes it
    preview: pathlib.Path         # PNG for the page
    hole: pathlib.Path            # mask PNG, 255 = hole
    download_name: str


class Session:
    def __init__(self, root: pathlib.Path):
        self.token = secrets.token_hex(16)
        self.dir = root / self.token
        self.dir.mkdir(mode=0o700)
        self.photos: dict[str, Photo] = {}
        self.results: dict[str, Result] = {}
        self.lock = threading.Lock()
        self.used = time.monotonic()

    def new_id(self) -> str:
        return secrets.token_hex(8)


def _safe_stem(name) -> str:
    stem = pathlib.PurePath(str(name or "photo").replace("\\", "/")).stem
    stem = re.sub(r"[^\w.-]+", "_", stem, flags=re.UNICODE).strip("._")[:80]
    return stem or "photo"


def _check_and_load(path: pathlib.Path, shown: str):
    """The stored upload -> LoadedImage; AppError(400/413) for a non-image, a bomb, too large."""
    from PIL import Image, UnidentifiedImageError

    from gone.io import ImageReadError, load_image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # MAX_PIXELS below
            with Image.open(path) as im:
                fmt, (w, h) = im.format, im.size
    except UnidentifiedImageError:
        raise AppError(400, f"{shown}: not an image (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError:
        raise AppError(413, f"{shown}: too large (at most {MAX_PIXELS // 1_000_000} megapixels)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise AppError(400, f"{shown}: cannot read the image ({err})") from None
    if w * h > MAX_PIXELS:
        raise AppError(413, f"{shown}: {w}x{h} is too large (at most {MAX_PIXELS // 1_000_000} megapixels)")
    if fmt not in FORMAT_EXT:
        raise AppError(400, f"{shown}: {fmt} images are not supported; use JPEG, PNG, WebP or TIFF")
    try:
        loaded = load_image(path)
    except ImageReadError as err:
        raise AppError(400, f"{shown}: {str(err).split(': ', 1)[-1]}") from None
    return loaded


# ----------------------------------------------------------------------------------------------
# The state of one server

class AppState:
    def __init__(self, photos_dir=None, engine=None, workdir=None):
        self.photos_dir = pathlib.Path(os.path.realpath(photos_dir)) if photos_dir else None
        if self.photos_dir is not None and not self.photos_dir.is_dir():
            raise AppError(400, f"{photos_dir}: not a folder")
        self.engine = engine or Engine()
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="gone_app_", dir=workdir))
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        self._browse: dict[str, pathlib.Path] = {}
        self.images = ImageCache()

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)

    # sessions
    def new_session(self) -> Session:
        with self.lock:
            if len(self.sessions) >= MAX_SESSIONS:
                oldest = min(self.sessions.values(), key=lambda s: s.used)
                del self.sessions[oldest.token]
                shutil.rmtree(oldest.dir, ignore_errors=True)
            s = Session(self.root)
            self.sessions[s.token] = s
            return s

    def session(self, token) -> Session:
        s = self.sessions.get(token) if isinstance(token, str) else None
        if s is None:
            raise AppError(403, "unknown or expired session; reload the page")
        s.used = time.monotonic()
        return s

    # PHOTOS_DIR
    def browse(self) -> list:
        if self.photos_dir is None:
            raise AppError(404, "no photo folder: start the app with gone app PHOTOS_DIR")
        from gone.io import IMAGE_EXTENSIONS
        found = {}
        for dirpath, dirnames, filenames in os.walk(self.photos_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or pathlib.Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                real = pathlib.Path(os.path.realpath(os.path.join(dirpath, name)))
                if self.photos_dir not in real.parents or not real.is_file():
                    continue      # a symlink leaving PHOTOS_DIR
                rel = real.relative_to(self.photos_dir).as_posix()
                found["b" + hashlib.sha256(rel.encode()).hexdigest()[:16]] = (rel, real)
                if len(found) >= MAX_BROWSE:
                    break
            if len(found) >= MAX_BROWSE:
                break
        with self.lock:
            self._browse.update({k: v[1] for k, v in found.items()})
        return [{"id": k, "name": rel} for k, (rel, _) in found.items()]

    def browsed(self, browse_id) -> pathlib.Path:
        path = self._browse.get(browse_id) if isinstance(browse_id, str) else None
        if path is None:
            raise AppError(404, "unknown photo id (list the folder again)")
        real = pathlib.Path(os.path.realpath(path))   # checked again: a file swapped for a link
        if self.photos_dir not in real.parents or not real.is_file():
            raise AppError(404, "that photo is no longer in the folder")
        return real

    # photos
    def add_photo(self, session: Session, name: str, data: bytes) -> Photo:
        from gone.io import write_bytes_atomic
        shown = _safe_stem(name) + pathlib.PurePath(str(name)).suffix[:10]
        with session.lock:
            if len(session.photos) >= MAX_PHOTOS:
                raise AppError(413, f"at most {MAX_PHOTOS} photos per session; reload the page to start over")
            pid = session.new_id()
        tmp = session.dir / f"{pid}.upload"
        write_bytes_atomic(tmp, data)
        try:
            loaded = _check_and_load(tmp, shown)
        except AppError:
            tmp.unlink(missing_ok=True)
            raise
        path = session.dir / f"{pid}{FORMAT_EXT[loaded.format]}"
        os.replace(tmp, path)
        self.images.get(path, loaded)
        photo = Photo(pid, shown, path, self.images)
        with session.lock:
            if len(session.photos) >= MAX_PHOTOS:
                path.unlink(missing_ok=True)
                raise AppError(413, f"at most {MAX_PHOTOS} photos per session; reload the page to start over")
            session.photos[pid] = photo
        return photo

    def photo(self, session, photo_id) -> Photo:
        p = session.photos.get(photo_id) if isinstance(photo_id, str) and _ID.match(photo_id) else None
        if p is None:
            raise AppError(404, "unknown photo id")
        return p

    def result(self, session, result_id) -> Result:
        r = session.results.get(result_id) if isinstance(result_id, str) and _ID.match(result_id) else None
        if r is None:
            raise AppError(404, "unknown result id")
        return r


# ----------------------------------------------------------------------------------------------
# Detections, choices, hole

def outline(mask):
    """Outer contours of a bool mask as lists of [x, y] (cv2.findContours, simplified to 1 px)."""
    import cv2
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        c = cv2.approxPolyDP(c, 1.0, True)
        if len(c) >= 3:
            out.append(c.reshape(-1, 2).tolist())
    return out


def detections_json(det, shape, min_score):
    names = _masks.coco_class_names()
    kept = _subject.subject_instances(det, shape, min_score=min_score)
    out = []
    for i, cid in enumerate(np.asarray(det["class_ids"]).reshape(-1)):
        cid = int(cid)
        out.append({"index": i, "class": names[cid] if 0 <= cid < len(names) else str(cid),
                    "class_id": cid, "score": round(float(det["scores"][i]), 4),
                    "box": [int(v) for v in det["rois"][i]],
                    "outline": outline(det["masks"][..., i]), "subject": bool(kept[i])})
    return out


def _options(data):
    """(strategy, dilation) from a request body; AppError for a bad value."""
    strategy = data.get("strategy", "dilated")
    if strategy not in _masks.STRATEGIES:
        raise AppError(400, f"unknown strategy; choose one of {', '.join(_masks.STRATEGIES)}")
    dilation = data.get("dilation")
    try:
        dilation = _masks.DEFAULT_DILATION if dilation in (None, "") else _masks.parse_dilation(dilation)
    except ValueError as err:
        raise AppError(400, str(err)) from None
    if dilation < 0:
        raise AppError(400, "dilation must be >= 0")
    return strategy, dilation


def _remove_flags(data, n):
    remove = data.get("remove")
    if not isinstance(remove, list) or any(not isinstance(i, int) or isinstance(i, bool)
                                           or not 0 <= i < n for i in remove):
        raise AppError(400, f"'remove' must be a list of detection indices (0..{n - 1})")
    flags = np.zeros(n, bool)
    flags[remove] = True
    return flags


def decode_edits(text, shape):
    """The page's brush/eraser layer (a PNG data URL, the photo's size): (brush, eraser) bool
    HxW. A pixel with alpha > 127 is brush where red > green, eraser where green > red."""
    from PIL import Image
    if text in (None, ""):
        z = np.zeros(shape[:2], bool)
        return z, z
    if not isinstance(text, str) or not text.startswith("data:image/png;base64,"):
        raise AppError(400, "'edits' must be a PNG data URL")
    try:
        raw = base64.b64decode(text.split(",", 1)[1], validate=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                if im.format != "PNG":
                    raise ValueError("not a PNG")
                if im.size != (shape[1], shape[0]):
                    raise AppError(400, f"'edits' is {im.size[0]}x{im.size[1]}, the photo {shape[1]}x{shape[0]}")
                rgba = np.asarray(im.convert("RGBA"))
    except AppError:
        raise
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise AppError(400, f"'edits' is not a readable PNG ({err})") from None
    alpha = rgba[..., 3] > 127
    red, green = rgba[..., 0].astype(int), rgba[..., 1].astype(int)
    return alpha & (red > green), alpha & (green > red)


def build_hole(photo, data):
    """The hole for a request: strategy hole of the removed instances, plus brush, minus eraser."""
    from gone.pipeline import PeopleRemover
    strategy, dilation = _options(data)
    rgb = photo.loaded.rgb
    det = photo.detections
    if det is None:
        hole = np.zeros(rgb.shape[:2], bool)
        if data.get("remove"):
            raise AppError(400, "run detection first (POST /api/detect)")
    else:
        flags = _remove_flags(data, len(np.asarray(det["class_ids"]).reshape(-1)))
        remover = PeopleRemover(None, None, strategy=strategy, dilation=dilation, classes=None, min_score=0.0)
        hole = _subject.hole_without(remover, det, rgb, flags)
    brush, eraser = decode_edits(data.get("edits"), rgb.shape)
    return (hole | brush) & ~eraser, strategy, dilation


def _png(mask_or_rgb) -> bytes:
    from PIL import Image
    arr = np.asarray(mask_or_rgb)
    im = Image.fromarray(arr.astype(np.uint8) * 255, "L") if arr.dtype == bool else Image.fromarray(arr, "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# The Flask app

def create_app(photos_dir=None, detector=None, loopback_only=True, workdir=None, engine=None):
    """The Flask app (tests use its test client; ``serve`` runs it). ``detector``: a detector
    object to use instead of loading Mask R-CNN (tests); ``loopback_only``: refuse Host headers
    other than the loopback names (DNS rebinding)."""
    from flask import Flask, Response, jsonify, request, send_file
    from werkzeug.exceptions import HTTPException

    from gone.inpainters import INPAINTER_KINDS

    state = AppState(photos_dir, engine or Engine(detector), workdir)
    app = Flask("gone.app", static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.json.sort_keys = False
    app.extensions["gone_app"] = state
    websafety.install(app, CSP, loopback_only=loopback_only)

    @app.errorhandler(AppError)
    def _app_error(err):
        return jsonify({"error": err.message}), err.status

    @app.errorhandler(HTTPException)
    def _http(err):
        if err.code == 413:
            return jsonify({"error": f"request too large (at most {MAX_UPLOAD_BYTES // 2**20} MB)"}), 413
        return jsonify({"error": f"{err.code} {err.name}: {err.description}"}), err.code

    @app.errorhandler(Exception)
    def _unexpected(err):   # one line for the page; the traceback goes to the server's log
        app.logger.exception("gone app: unexpected error")
        return jsonify({"error": f"internal error: {type(err).__name__}: {err}".splitlines()[0]}), 500

    def body():
        data = request.get_json(silent=True) if request.is_json else None
        if not isinstance(data, dict):
            raise AppError(400 if request.is_json else 415, "send a JSON object (Content-Type: application/json)")
        return data

    def session():
        return state.session(request.headers.get("X-Gone-Session"))

    def photo_json(p):
        loaded = p.loaded
        h, w = loaded.rgb.shape[:2]
        return {"id": p.id, "name": p.name, "width": w, "height": h, "format": loaded.format,
                "image": f"/api/photos/{p.id}/image", "note": loaded.note, "result": p.result}

    @app.get("/")
    def page():
        return send_file(STATIC / "index.html", mimetype="text/html", max_age=0)

    @app.post("/api/session")
    def api_session():
        s = state.new_session()
        return jsonify({"session": s.token})

    @app.get("/api/config")
    def api_config():
        return jsonify({"strategies": list(_masks.STRATEGIES), "default_strategy": "dilated",
                        "default_dilation": f"{_masks.DEFAULT_DILATION:g}",
                        "inpainters": list(INPAINTER_KINDS), "default_inpainter": "auto",
                        "classes": _masks.coco_class_names()[1:], "default_class": "person",
                        "min_score": 0.7, "max_photos": MAX_PHOTOS,
                        "max_upload_mb": MAX_UPLOAD_BYTES // 2**20,
                        "max_megapixels": MAX_PIXELS // 1_000_000,
                        "photos_dir": state.photos_dir is not None})

    @app.get("/api/browse")
    def api_browse():
        session()
        return jsonify({"files": state.browse()})

    @app.get("/api/photos")
    def api_photos():
        s = session()
        return jsonify({"photos": [photo_json(p) for p in s.photos.values()]})

    @app.post("/api/photos")
    def api_add_photos():
        s = session()
        added, errors = [], []
        if request.is_json:
            ids = body().get("browse")
            if not isinstance(ids, list) or not 0 < len(ids) <= MAX_PHOTOS:
                raise AppError(400, f"'browse' must be a list of 1..{MAX_PHOTOS} ids from /api/browse")
            items = []
            for bid in ids:
                path = state.browsed(bid)
                if path.stat().st_size > MAX_UPLOAD_BYTES:
                    errors.append(AppError(413, f"{path.name}: larger than {MAX_UPLOAD_BYTES // 2**20} MB"))
                    continue
                items.append((path.relative_to(state.photos_dir).name, path.read_bytes()))
        else:
            files = request.files.getlist("file")
            if not files:
                raise AppError(400, "no file in the upload (multipart field 'file')")
            items = [(f.filename, f.read()) for f in files]
        for name, data in items:
            try:
                added.append(photo_json(state.add_photo(s, name, data)))
            except AppError as err:
                errors.append(err)
                if "per session" in err.message:
                    break
        if not added and errors:
            raise AppError(errors[0].status, "; ".join(e.message for e in errors))
        return jsonify({"photos": added, "errors": [e.message for e in errors]})

    @app.get("/api/photos/<photo_id>/image")
    def api_photo_image(photo_id):
        p = state.photo(session_from_query(), photo_id)
        return Response(_png(p.loaded.rgb), mimetype="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    def session_from_query():
        # <img> and download links cannot send headers: the token comes as ?s=
        return state.session(request.headers.get("X-Gone-Session") or request.args.get("s"))

    @app.post("/api/detect")
    def api_detect():
        s = session()
        data = body()
        p = state.photo(s, data.get("photo"))
        min_score = data.get("min_score", 0.7)
        if not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1:
            raise AppError(400, "'min_score' must be a number in [0, 1]")
        rgb = p.loaded.rgb
        if p.detections is None:
            p.detections = state.engine.detect(rgb)
        inst = detections_json(p.detections, rgb.shape, float(min_score))
        msg = "" if any(i["class"] == "person" for i in inst) else "no person found in this photo"
        return jsonify({"photo": p.id, "instances": inst, "message": msg})

    @app.post("/api/hole")
    def api_hole():
        s = session()
        data = body()
        p = state.photo(s, data.get("photo"))
        hole, _, _ = build_hole(p, data)
        return Response(_png(hole), mimetype="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/remove")
    def api_remove():
        from gone.outputs import OutputJob, output_ext_for, write_job_outputs
        from gone.io import write_bytes_atomic
        s = session()
        data = body()
        p = state.photo(s, data.get("photo"))
        kind = data.get("inpainter", "auto")
        if kind not in INPAINTER_KINDS:
            raise AppError(400, f"unknown inpainter; choose one of {', '.join(INPAINTER_KINDS)}")
        hole, strategy, dilation = build_hole(p, data)
        if not hole.any():
            raise AppError(400, "nothing to remove: mark people to remove or brush an area")
        t0 = time.perf_counter()
        loaded = p.loaded
        result, used = state.engine.remove(loaded.rgb, hole, kind, strategy=strategy,
                                           dilation=dilation, classes=None, min_score=0.0,
                                           large_crop="warn")
        rid = s.new_id()
        ext, fmt = output_ext_for(p.path, loaded)
        folder = s.dir / rid
        folder.mkdir()
        job = OutputJob(p.path, rid, ext, fmt, folder / f"result{ext}", folder / "hole.png")
        write_job_outputs(job, loaded, result, ("image", "mask"))
        preview = folder / "preview.png"
        write_bytes_atomic(preview, _png(result.output))
        r = Result(rid, p.id, job.image_out, preview, job.mask_out, f"{_safe_stem(p.name)}_gone{ext}")
        with s.lock:
            s.results[rid] = r
            p.result = rid
        return jsonify({"result": rid, "photo": p.id, "status": result.status, "message": result.message,
                        "inpainter": used, "hole_fraction": round(result.large_crop_fraction, 4),
                        "seconds": round(time.perf_counter() - t0, 3),
                        "preview": f"/api/results/{rid}/preview", "hole": f"/api/results/{rid}/hole",
                        "download": f"/api/results/{rid}/download", "download_name": r.download_name})

    @app.get("/api/results/<result_id>/<which>")
    def api_result(result_id, which):
        r = state.result(session_from_query(), result_id)
        if which == "preview":
            return send_file(r.preview, mimetype="image/png", max_age=0)
        if which == "hole":
            return send_file(r.hole, mimetype="image/png", max_age=0)
        if which == "download":
            mime = BROWSER_TYPES.get(r.file.suffix, "application/octet-stream")
            return send_file(r.file, mimetype=mime, as_attachment=True, download_name=r.download_name,
                             max_age=0)
        raise AppError(404, "unknown result file; use preview, hole or download")

    @app.get("/api/download-all")
    def api_download_all():
        s = session_from_query()
        latest = [s.results[p.result] for p in s.photos.values() if p.result in s.results]
        if not latest:
            raise AppError(404, "no results yet")
        buf = io.BytesIO()
        used = set()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for r in latest:
                name, k = r.download_name, 1
                while name.lower() in used:
                    k += 1
                    name = f"{pathlib.PurePath(r.download_name).stem}_{k}{r.file.suffix}"
                used.add(name.lower())
                z.write(r.file, name)
        return Response(buf.getvalue(), mimetype="application/zip",
                        headers={"Content-Disposition": "attachment; filename=gone_results.zip"})

    @app.get("/api/status")
    def api_status():
        return jsonify({"busy": state.engine.busy})

    return app


# ----------------------------------------------------------------------------------------------
# Command line

def serve(photos_dir=None, host="127.0.0.1", port=8780, out=print, detector=None):
    """Runs the app with Werkzeug's threaded server until Ctrl-C; the temp folder is removed."""
    from werkzeug.serving import make_server

    websafety.warn_if_exposed(host, "gone app", "can upload photos and download the results")
    app = create_app(photos_dir, detector=detector, loopback_only=websafety.is_loopback(host))
    state = app.extensions["gone_app"]
    try:
        server = make_server(host, port, app, threaded=True)
        out(f"gone app: photos and results in {state.root} (removed at exit)")
        out(f"gone app: open {websafety.shown_url(host, server.server_port)} (Ctrl-C to stop)")
        websafety.serve_until_interrupted(server)
    finally:
        state.close()
    return 0


def add_arguments(parser):
    parser.add_argument("photos_dir", nargs="?", default=None, metavar="PHOTOS_DIR",
                        help="a folder whose photos the page can open (default: none, upload only)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8780, help="port (default 8780; 0 = any)")


def main(args) -> int:
    """``gone app`` (argparse namespace from add_arguments); returns the exit code."""
    try:
        if not 0 <= args.port <= 65535:
            raise AppError(2, f"--port must be in 0..65535, got {args.port}")
        return serve(args.photos_dir, args.host, args.port)
    except AppError as err:
        print(f"gone app: error: {err.message}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"gone app: error: {err.strerror or err}", file=sys.stderr)
        return 2
