"""``gone label``: a blind labeling web app for experiment outputs (Flask + sqlite3).

``gone label OUTPUT_DIR... [--host 127.0.0.1] [--port 8765]`` serves the blinded results of one or
more experiment outputs (their ``labeling_sheet.csv`` and ``to_label/`` copies). A rater types a
name and labels one result at a time as good / okay / striped / solid (keys 1-4 or g/o/s/x, u to
undo), optionally tagging what went wrong (limbs, shadows, held object, infill like a person).
``gone label OUTPUT_DIR... --export`` writes ``labels/<rater>.csv`` in the sheet format that
``experiments/make_table.py`` reads. The JSON API is documented in docs/labeling.md.

Store: one SQLite file per output folder (``labeling.sqlite``, WAL journal, synchronous=FULL), one
row per (rater, result) committed before the answer is sent, so killing the server loses no label
already answered.

Blindness and safety: items are known to the client only by an opaque id (a hash of the folder and
the result id); images are served by that id from a table built at start-up, so only the result
and original files of listed items can be read (paths are resolved with symlinks and must stay
inside their output folder). The private key is read on the server only, to find each result's
original; nothing about the method leaves the server.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import re
import sqlite3
import sys
import threading
import time
import unicodedata

from gone import websafety
from gone import labeling
from gone.labeling import sheets
from gone.io import write_text_atomic

DB_NAME = "labeling.sqlite"
EXAMPLES_FIGURE = "figure3_label_examples.png"   # shown beside the definitions once it exists
# Error kinds a rater can tag (Figure 7 groups the error samples by them).
TAGS = ("limbs", "shadows", "held_objects", "person_infill")
TAG_TITLES = {"limbs": "limbs left", "shadows": "shadows left", "held_objects": "held object left",
              "person_infill": "infill looks like a person"}
LABEL_DEFINITIONS = {
    "good": "the person is gone and no trace is visible",
    "okay": "the person is gone; minor artefacts (blur, a faint edge)",
    "striped": "streaky or repeated texture fills the hole",
    "solid": "a flat blob of colour fills the hole",
}
EXPORT_COLUMNS = ("result_id", "image_path", "label", "notes", "rater", "tags")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp"}
MAX_NOTES = 500
MAX_RATER = 40
LOOPBACK = websafety.LOOPBACK_NAMES
CSP = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "connect-src 'self'; frame-ancestors 'none'")


class LabelAppError(ValueError):
    """A folder cannot be served or exported (one line for the user)."""


# ----------------------------------------------------------------------------------------------
# Raters

def sanitize_rater(name) -> str:
    """A rater name as typed -> a safe, file-name-friendly id; ValueError when nothing is left.

    NFKC-normalised, lower case, letters/digits/underscore kept (any script), every other run of
    characters becomes one '-', at most 40 characters: ``' Ålice O'Neil '`` -> ``'ålice-o-neil'``.
    """
    if not isinstance(name, str):
        raise ValueError("rater must be a string")
    text = unicodedata.normalize("NFKC", name).strip().lower()
    text = re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-_")
    text = text[:MAX_RATER].strip("-_")
    if not text:
        raise ValueError("rater name is empty (use letters or digits)")
    return text


# ----------------------------------------------------------------------------------------------
# Items

@dataclasses.dataclass(frozen=True)
class Item:
    id: str                    # opaque, what the client sees
    folder: int                # index into the output folders
    result_id: str             # the sheet's id (export)
    sheet_path: str            # the sheet's image_path (export)
    image: pathlib.Path        # resolved blinded result file
    original: pathlib.Path | None


def _inside(root: pathlib.Path, path: pathlib.Path) -> pathlib.Path | None:
    """The resolved `path` if it is a file inside `root` (symlinks followed), else None."""
    try:
        real = pathlib.Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None
    if real != root and root not in real.parents:
        return None
    if not real.is_file() or real.suffix.lower() not in IMAGE_TYPES:
        return None
    return real


def _relative(root: pathlib.Path, text: str) -> pathlib.Path | None:
    """A sheet path (relative to the folder, '/'-separated) -> path under root; None if absolute."""
    text = (text or "").strip()
    if (not text or os.path.isabs(text) or text.startswith(("/", "\\"))
            or re.match(r"^[a-zA-Z]:", text)):
        return None
    return root / text


def _originals(root: pathlib.Path) -> dict:
    """image name -> original file (from per_image.csv, else images/<image>/original.png)."""
    found = {}
    per_image = root / "per_image.csv"
    if per_image.is_file():
        try:
            for row in labeling.read_csv_rows(per_image, (), "per-image table"):
                if row.get("image") and row.get("original_path"):
                    found.setdefault(row["image"], row["original_path"])
        except labeling.LabelingError:
            found = {}
    return found


def load_items(folders, warn=None) -> tuple[list, list]:
    """(resolved output folders, items) for the app; LabelAppError when a folder is unusable."""
    warn = warn or (lambda msg: print(f"gone label: warning: {msg}", file=sys.stderr))
    roots, items, seen = [], [], set()
    for folder in folders:
        root = pathlib.Path(os.path.realpath(folder))
        if not root.is_dir():
            raise LabelAppError(f"{folder}: not a folder")
        if root in roots:
            warn(f"{folder}: listed twice; served once")
            continue
        k = len(roots)
        sheet = root / "labeling_sheet.csv"
        if not sheet.is_file():
            raise LabelAppError(f"{folder}: no labeling_sheet.csv (is it an experiment output?)")
        try:
            rows = sheets._read_csv(sheet, ("result_id", "image_path"), "labeling sheet")
        except labeling.LabelingError as err:   # names the file, never echoes its contents
            raise LabelAppError(f"cannot read the labeling sheet: {err}") from None
        key = {}
        key_path = root / "private" / "labeling_key.csv"
        if key_path.is_file():
            try:
                key = labeling.read_key(key_path)
            except labeling.LabelingError:
                warn(f"{folder}: unreadable private/labeling_key.csv; originals not shown")
        originals = _originals(root)
        skipped = 0
        for row in rows:
            rid = (row.get("result_id") or "").strip()
            rel = _relative(root, row.get("image_path", ""))
            image = _inside(root, rel) if rel is not None and rid else None
            if image is None or (k, rid) in seen:
                skipped += 1
                continue
            seen.add((k, rid))
            original = None
            if key.get(rid):
                name = key[rid][0][0]
                rel_o = _relative(root, originals.get(name, f"images/{name}/original.png"))
                original = _inside(root, rel_o) if rel_o is not None else None
            item_id = "i" + hashlib.sha256(f"{root}\0{rid}".encode()).hexdigest()[:16]
            items.append(Item(item_id, k, rid, row["image_path"].strip(), image, original))
        if skipped:
            warn(f"{folder}: {skipped} sheet row(s) skipped (no result id, a duplicate, or an "
                 "image that is missing or outside the output folder)")
        roots.append(root)
    if not items:
        raise LabelAppError("no items to label in " + ", ".join(map(str, folders)))
    return roots, items


# ----------------------------------------------------------------------------------------------
# Store

class LabelStore:
    """One SQLite file per output folder; one row per (rater, result_id)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS labels (
        rater TEXT NOT NULL, result_id TEXT NOT NULL, label TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '',
        updated_ns INTEGER NOT NULL, PRIMARY KEY (rater, result_id));
    CREATE TABLE IF NOT EXISTS exports (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self._local = threading.local()
        self._write = threading.Lock()
        with self._conn() as c:
            c.executescript(self.SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def put(self, rater, result_id, label, tags=(), notes=""):
        with self._write, self._conn() as c:   # committed when the block ends
            c.execute("INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(rater, result_id) "
                      "DO UPDATE SET label=excluded.label, tags=excluded.tags, "
                      "notes=excluded.notes, updated_ns=excluded.updated_ns",
                      (rater, result_id, label, "|".join(tags), notes, time.time_ns()))

    def delete(self, rater, result_id):
        with self._write, self._conn() as c:
            c.execute("DELETE FROM labels WHERE rater=? AND result_id=?", (rater, result_id))

    def last(self, rater, keep=lambda result_id: True):
        """(updated_ns, result_id) of the rater's latest label with keep(result_id), or None."""
        for row in self._conn().execute("SELECT updated_ns, result_id FROM labels WHERE "
                                        "rater=? ORDER BY updated_ns DESC", (rater,)):
            if keep(row[1]):
                return row
        return None

    def labeled(self, rater) -> set:
        return {r[0] for r in self._conn().execute(
            "SELECT result_id FROM labels WHERE rater=?", (rater,))}

    def counts(self) -> dict:
        return dict(self._conn().execute("SELECT rater, COUNT(*) FROM labels GROUP BY rater"))

    def rows(self, rater) -> list:
        return self._conn().execute("SELECT result_id, label, tags, notes FROM labels WHERE "
                                    "rater=? ORDER BY result_id", (rater,)).fetchall()

    def raters(self) -> list:
        return [r[0] for r in self._conn().execute(
            "SELECT DISTINCT rater FROM labels ORDER BY rater")]

    def exported_sha(self, path):
        row = self._conn().execute("SELECT sha256 FROM exports WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def record_export(self, path, sha):
        with self._write, self._conn() as c:
            c.execute("INSERT OR REPLACE INTO exports VALUES (?, ?)", (path, sha))


class Labeler:
    """The app's state: items of the folders and their stores (no web code)."""

    def __init__(self, folders, warn=None):
        self.roots, items = load_items(folders, warn)
        self.items = {it.id: it for it in items}
        self.by_result = {(it.folder, it.result_id): it for it in items}
        self.stores = [LabelStore(root / DB_NAME) for root in self.roots]
        self._orders = {}

    def order(self, rater) -> list:
        """The rater's own random order of every item: stable across restarts."""
        if rater not in self._orders:
            if len(self._orders) > 1000:   # many names typed: recompute instead of growing
                self._orders.clear()
            self._orders[rater] = sorted(self.items, key=lambda i: hashlib.sha256(
                f"{rater}\0{i}".encode()).digest())
        return self._orders[rater]

    def done_ids(self, rater) -> set:
        done = set()
        for k, store in enumerate(self.stores):
            for rid in store.labeled(rater):
                it = self.by_result.get((k, rid))
                if it is not None:
                    done.add(it.id)
        return done

    def progress(self, rater) -> dict:
        done = len(self.done_ids(rater))
        return {"done": done, "left": len(self.items) - done, "total": len(self.items)}

    def next_item(self, rater):
        done = self.done_ids(rater)
        for item_id in self.order(rater):
            if item_id not in done:
                return self.items[item_id]
        return None

    def put(self, rater, item: Item, label, tags=(), notes=""):
        self.stores[item.folder].put(rater, item.result_id, label, tags, notes)

    def undo(self, rater):
        """Removes the rater's latest label; returns its item or None."""
        latest = None
        for k, store in enumerate(self.stores):
            # Only results still in the sheet (a re-run experiment has new result ids).
            row = store.last(rater, keep=lambda rid, k=k: (k, rid) in self.by_result)
            if row and (latest is None or row[0] > latest[0]):
                latest = (row[0], k, row[1])
        if latest is None:
            return None
        _, k, rid = latest
        self.stores[k].delete(rater, rid)
        return self.by_result.get((k, rid))

    def all_progress(self) -> dict:
        raters = {}
        for k, store in enumerate(self.stores):
            for rater in store.raters():
                raters.setdefault(rater, 0)
        for rater in raters:
            raters[rater] = self.progress(rater)
        return {"total": len(self.items), "raters": raters}


# ----------------------------------------------------------------------------------------------
# Export

# A cell starting with one of these is a formula to a spreadsheet program (OWASP, "CSV Injection":
# = + - @, tab, carriage return; line feed too): exported free text gets a leading "'" so that it
# shows as text. The full-width forms are included as some spreadsheet programs accept them.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise_cell(text):
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    text = "" if text is None else str(text)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def export(folders, out=print) -> int:
    """Writes <folder>/labels/<rater>.csv for every rater of every folder; returns an exit code.

    A file there that this export did not write (a sheet filled by hand) is never replaced, and
    nothing is written outside the output folder: a ``labels`` that leads out of it (a symlink) is
    refused, as serving refuses files that resolve outside it."""
    roots, _ = load_items(folders, warn=lambda msg: None)
    status = 0
    for root in roots:
        db = root / DB_NAME
        if not db.is_file():
            out(f"{root}: no labels yet")
            continue
        store = LabelStore(db)
        sheet_paths = {}
        for row in sheets._read_csv(root / "labeling_sheet.csv", ("result_id", "image_path"),
                                      "labeling sheet"):
            sheet_paths[row["result_id"].strip()] = row["image_path"].strip()
        labels = pathlib.Path(os.path.realpath(root / "labels"))   # symlinks followed
        if root not in labels.parents or (labels.exists() and not labels.is_dir()):
            print(f"gone label: error: {root / 'labels'} resolves to {labels}, not a folder inside "
                  f"{root}; labels are exported only into the output folder; nothing written",
                  file=sys.stderr)
            status = 1
            continue
        for rater in store.raters():
            target = root / "labels" / f"{rater}.csv"
            rel = target.relative_to(root).as_posix()
            if target.exists():
                current = hashlib.sha256(target.read_bytes()).hexdigest()
                if store.exported_sha(rel) != current:
                    print(f"gone label: error: {target} exists and was not written by "
                          "`gone label --export`; not replaced (move it away first)",
                          file=sys.stderr)
                    status = 1
                    continue
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            rows = [r for r in store.rows(rater) if r[0] in sheet_paths]
            stale = len(store.rows(rater)) - len(rows)
            for rid, label, tags, notes in rows:
                # notes on one line (as the page stores them), never read as a formula
                writer.writerow([rid, sheet_paths[rid], label, neutralise_cell(" ".join(notes.split())),
                                 rater, tags])
            if stale:
                out(f"{target}: {stale} label(s) of results no longer in labeling_sheet.csv "
                    "(an earlier run) left out")
            text = buf.getvalue()
            write_text_atomic(target, text)
            store.record_export(rel, hashlib.sha256(text.encode("utf-8")).hexdigest())
            out(f"{target}: {len(rows)} label(s)")
    return status


# ----------------------------------------------------------------------------------------------
# Web app

def create_app(folders, trusted_hosts=None, warn=None):
    """The Flask app for `folders` (tests use its test client; `serve` runs it)."""
    from flask import Flask, Response, jsonify, request, send_file
    from werkzeug.exceptions import HTTPException

    state = Labeler(folders, warn)
    # The label examples (experiments/fig3_label_examples.py) of the first folder that has them.
    examples = next((p for p in (_inside(r, r / EXAMPLES_FIGURE) for r in state.roots) if p),
                    None)
    app = Flask("gone.labeling.app", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.json.sort_keys = False
    # Host check (DNS rebinding) with trusted_hosts, Origin check, security headers
    websafety.install(app, CSP, loopback_only=False, trusted_hosts=trusted_hosts)
    app.extensions["gone_labeler"] = state

    class BadRequest(Exception):
        def __init__(self, status, message):
            super().__init__(message)
            self.status, self.message = status, message

    @app.errorhandler(BadRequest)
    def _bad(err):
        return jsonify({"error": err.message}), err.status

    @app.errorhandler(HTTPException)
    def _http(err):
        return jsonify({"error": f"{err.code} {err.name}: {err.description}"}), err.code

    def rater_of(value):
        if value is None or value == "":
            raise BadRequest(400, "missing 'rater'")
        try:
            return sanitize_rater(value)
        except ValueError as err:
            raise BadRequest(400, f"bad 'rater': {err}") from None

    def body():
        if not request.is_json:
            raise BadRequest(415, "send JSON (Content-Type: application/json)")
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise BadRequest(400, "malformed JSON: expected an object")
        return data

    def item_json(item):
        if item is None:
            return None
        return {"id": item.id, "image": f"/img/{item.id}/result",
                "original": f"/img/{item.id}/original" if item.original else None}

    html = page_html()

    @app.get("/")
    def page():
        return Response(html, mimetype="text/html")

    @app.get("/api/next")
    def api_next():
        rater = rater_of(request.args.get("rater"))
        item = state.next_item(rater)
        return jsonify({"rater": rater, "done": item is None, "item": item_json(item),
                        "progress": state.progress(rater)})

    @app.post("/api/labels")
    def api_labels():
        data = body()
        rater = rater_of(data.get("rater"))
        item_id = data.get("item_id")
        if not isinstance(item_id, str) or not item_id:
            raise BadRequest(400, "missing 'item_id'")
        item = state.items.get(item_id)
        if item is None:
            raise BadRequest(404, "unknown item_id")
        raw = data.get("label")
        if not isinstance(raw, str) or raw.strip().lower() not in labeling.LABELS:
            raise BadRequest(400, f"unknown label; expected one of {', '.join(labeling.LABELS)}")
        tags = data.get("tags") or []
        if not isinstance(tags, list) or any(t not in TAGS for t in tags):
            raise BadRequest(400, f"bad 'tags'; expected a list of {', '.join(TAGS)}")
        notes = data.get("notes") or ""
        if not isinstance(notes, str) or len(notes) > MAX_NOTES:
            raise BadRequest(400, f"'notes' must be a string of at most {MAX_NOTES} characters")
        notes = " ".join(notes.split())
        state.put(rater, item, raw.strip().lower(), sorted(set(tags)), notes)
        return jsonify({"ok": True, "rater": rater, "item_id": item.id,
                        "progress": state.progress(rater)})

    @app.post("/api/undo")
    def api_undo():
        rater = rater_of(body().get("rater"))
        item = state.undo(rater)
        return jsonify({"rater": rater, "undone": item.id if item else None,
                        "item": item_json(item), "progress": state.progress(rater)})

    @app.get("/api/progress")
    def api_progress():
        result = state.all_progress()
        if request.args.get("rater"):
            rater = rater_of(request.args.get("rater"))
            result["rater"] = rater
            result["progress"] = state.progress(rater)
        return jsonify(result)

    @app.get("/api/definitions")
    def api_definitions():
        return jsonify({"labels": LABEL_DEFINITIONS, "tags": TAG_TITLES,
                        "examples": "/examples.png" if examples else None})

    @app.get("/examples.png")
    def examples_figure():
        path = _inside(examples.parent, examples) if examples else None
        if path is None:
            raise BadRequest(404, "no label examples yet (experiments/fig3_label_examples.py)")
        resp = send_file(path, mimetype="image/png", etag=False, max_age=0)
        resp.headers.pop("Content-Disposition", None)
        return resp

    @app.get("/img/<item_id>/<which>")
    def image(item_id, which):
        item = state.items.get(item_id)
        if item is None or which not in ("result", "original"):
            raise BadRequest(404, "no such image")
        path = item.image if which == "result" else item.original
        if path is None:
            raise BadRequest(404, "no original for this item")
        # Re-checked at every request: a file swapped for a symlink later is refused too.
        path = _inside(state.roots[item.folder], path)
        if path is None:
            raise BadRequest(404, "no such image")
        resp = send_file(path, mimetype=IMAGE_TYPES[path.suffix.lower()], conditional=True,
                         etag=False, last_modified=None, max_age=0, download_name=None)
        resp.headers["Cache-Control"] = "private, no-cache"
        resp.headers.pop("Content-Disposition", None)   # the file name is not the client's business
        return resp

    return app


def serve(folders, host="127.0.0.1", port=8765, out=print):
    """Runs the app with Werkzeug's threaded WSGI server until Ctrl-C (or a kill)."""
    from werkzeug.serving import make_server

    loopback = not websafety.warn_if_exposed(host, "gone label", "can read the images and write labels")
    app = create_app(folders, trusted_hosts=websafety.LOOPBACK_NAMES if loopback else None)
    server = make_server(host, port, app, threaded=True)
    state = app.extensions["gone_labeler"]
    out(f"gone label: {len(state.items)} item(s) from {len(state.roots)} folder(s); labels in "
        + ", ".join(str(r / DB_NAME) for r in state.roots))
    out(f"gone label: serving on {websafety.shown_url(host, server.server_port)} (Ctrl-C to stop)")
    websafety.serve_until_interrupted(server)
    return 0


def add_arguments(parser):
    parser.add_argument("outputs", nargs="+", metavar="OUTPUT_DIR",
                        help="experiment output folder(s) (with labeling_sheet.csv, to_label/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument("--export", action="store_true",
                        help="write <OUTPUT_DIR>/labels/<rater>.csv from the store and exit")


def main(args) -> int:
    """`gone label` (argparse namespace from add_arguments); returns the exit code."""
    try:
        if args.export:
            return export(args.outputs)
        if not 0 <= args.port <= 65535:
            raise LabelAppError(f"--port must be in 0..65535, got {args.port}")
        return serve(args.outputs, args.host, args.port)
    except (LabelAppError, labeling.LabelingError, sqlite3.Error, OSError) as err:
        print(f"gone label: error: {err}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------------------------
# The page: static/label.html (no build step; data from the server is only ever set as text,
# never as HTML), with the label and tag definitions filled in.

def page_html() -> str:
    defs = json.dumps({"labels": LABEL_DEFINITIONS, "tags": TAG_TITLES})
    return (pathlib.Path(__file__).with_name("static") / "label.html").read_text(encoding="utf-8").replace(
        "__DEFS__", defs)
