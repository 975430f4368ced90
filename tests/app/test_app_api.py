"""`gone app`'s JSON API with Flask's test client: upload, detect, hole, remove, download (same
bytes as `gone remove`), one shared model with serialised inference, and the safety checks."""
import base64
import io
import os
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from gone import cli, masks, models, subject
from gone.app import server
from gone.pipeline import PeopleRemover

pytestmark = pytest.mark.jax  # no Keras: oracle detections, OpenCV inpainting


@pytest.fixture
def app(oracle, tmp_path):
    a = server.create_app(detector=oracle, workdir=tmp_path)
    yield a
    a.extensions["gone_app"].close()


def _session(client):
    token = client.post("/api/session").get_json()["session"]
    return {"X-Gone-Session": token}


def _upload(client, headers, data, name="photo.png"):
    return client.post("/api/photos", headers=headers, data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _png_data_url(rgba):
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def cli_oracle(monkeypatch, oracle):
    """`gone remove`'s real build_remover with the oracle detector instead of Mask R-CNN."""
    monkeypatch.setattr(models, "check_detector_weights", lambda *a, **k: [])
    monkeypatch.setattr(models, "load_detector", lambda path, **k: oracle)


def _gone_remove(args):
    assert cli.main(["remove", *map(str, args), "-q", "--mrcnn-weights", "oracle.h5"]) == 0


def test_upload_detect_remove_download_is_gone_remove_keep_subject(app, two_people, tmp_path, cli_oracle):
    scene, png = two_people
    c = app.test_client()
    h = _session(c)
    r = _upload(c, h, png, "My Photo.png")
    assert r.status_code == 200, r.get_json()
    (photo,) = r.get_json()["photos"]
    assert (photo["width"], photo["height"], photo["format"], photo["name"]) == (160, 120, "PNG", "My_Photo.png")
    shown = Image.open(io.BytesIO(c.get(photo["image"], headers=h).data))
    np.testing.assert_array_equal(np.asarray(shown), scene.image)
    det = c.post("/api/detect", headers=h, json={"photo": photo["id"]}).get_json()
    inst = det["instances"]
    assert [(i["class"], i["score"], i["subject"]) for i in inst] == [("person", 0.98, True), ("person", 0.91, False)]
    for i, k in zip(inst, range(2)):   # each outline is the instance's mask boundary
        y1, x1, y2, x2 = masks.boxes_from_masks(scene.person_masks[..., k:k + 1])[0]
        pts = np.concatenate([np.asarray(p) for p in i["outline"]])
        assert pts[:, 0].min() == x1 and pts[:, 0].max() == x2 - 1
        assert pts[:, 1].min() == y1 and pts[:, 1].max() == y2 - 1
    # the hole of "remove the passer-by" is the pipeline's hole without the subject
    hole_png = c.post("/api/hole", headers=h, json={"photo": photo["id"], "remove": [1]})
    hole = np.asarray(Image.open(io.BytesIO(hole_png.data))) == 255
    d = masks.detections_from_masks(scene.person_masks, scores=[0.98, 0.91])
    expect = PeopleRemover(None, None).hole_for(masks.detections_from_masks(scene.person_masks[..., 1:]),
                                                scene.image.shape, image=scene.image)
    np.testing.assert_array_equal(hole, expect)
    assert not (hole & scene.person_masks[..., 0]).any()
    res = c.post("/api/remove", headers=h, json={"photo": photo["id"], "remove": [1], "inpainter": "telea"})
    body = res.get_json()
    assert res.status_code == 200, body
    assert body["status"] == "inpainted" and body["inpainter"].startswith("OpenCV Telea")
    assert body["download_name"] == "My_Photo_gone.png"
    dl = c.get(body["download"], headers=h)
    assert dl.headers["Content-Disposition"].startswith("attachment")
    # `gone remove --keep subject` on the same photo: the same bytes
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "p.png").write_bytes(png)
    _gone_remove([tmp_path / "in" / "p.png", "-o", tmp_path / "cli", "--keep", "subject", "--inpainter", "telea"])
    assert (tmp_path / "cli" / "p.png").read_bytes() == dl.data
    # a brushed square and an erased strip: hole = strategy hole + brush - eraser
    edits = np.zeros((120, 160, 4), np.uint8)
    edits[5:25, 5:25] = (255, 0, 0, 255)
    edits[:, 100:104] = (0, 255, 0, 255)
    choice = {"photo": photo["id"], "remove": [1], "edits": _png_data_url(edits), "inpainter": "telea",
              "strategy": "box", "dilation": "3px"}
    hole2 = np.asarray(Image.open(io.BytesIO(c.post("/api/hole", headers=h, json=choice).data))) == 255
    box = PeopleRemover(None, None, strategy="box").hole_for(
        subject.subset(d, [1]), scene.image.shape, image=scene.image)
    expect2 = box.copy()
    expect2[5:25, 5:25] = True
    expect2[:, 100:104] = False
    np.testing.assert_array_equal(hole2, expect2)
    body2 = c.post("/api/remove", headers=h, json=choice).get_json()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(c.get(body2["hole"], headers=h).data))) == 255, expect2)
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "p.png").write_bytes(c.get(body2["hole"], headers=h).data)
    _gone_remove([tmp_path / "in" / "p.png", "-o", tmp_path / "cli2", "--masks", tmp_path / "masks",
                  "--inpainter", "telea"])
    assert (tmp_path / "cli2" / "p.png").read_bytes() == c.get(body2["download"], headers=h).data
    # the zip holds the latest result of each photo
    z = zipfile.ZipFile(io.BytesIO(c.get("/api/download-all", headers=h).data))
    assert z.namelist() == ["My_Photo_gone.png"]
    assert z.read("My_Photo_gone.png") == c.get(body2["download"], headers=h).data


def test_jpeg_with_exif_orientation_comes_back_upright_as_jpeg(app, two_people, oracle):
    scene, _ = two_people
    sideways = np.ascontiguousarray(np.rot90(scene.image, 1))   # stored rotated, EXIF says turn it
    exif = Image.Exif()
    exif[0x0112] = 6                                              # rotate 90 CW to display
    exif[0x010F] = "GONE test camera"
    buf = io.BytesIO()
    Image.fromarray(sideways).save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    c = app.test_client()
    h = _session(c)
    photo = _upload(c, h, buf.getvalue(), "side.jpeg").get_json()["photos"][0]
    assert (photo["width"], photo["height"], photo["format"]) == (160, 120, "JPEG")
    upright = np.asarray(Image.open(io.BytesIO(c.get(photo["image"], headers=h).data)))
    brush = np.zeros((120, 160, 4), np.uint8)
    brush[40:60, 40:60] = (255, 0, 0, 255)
    body = c.post("/api/remove", headers=h, json={"photo": photo["id"], "remove": [],
                                                 "edits": _png_data_url(brush), "inpainter": "telea"}).get_json()
    assert body["download_name"] == "side_gone.jpg"
    out = Image.open(io.BytesIO(c.get(body["download"], headers=h).data))
    assert out.format == "JPEG" and out.size == (160, 120)
    assert out.getexif().get(0x010F) == "GONE test camera" and 0x0112 not in out.getexif()
    assert np.abs(np.asarray(out).astype(int)[:30] - upright.astype(int)[:30]).mean() < 3


class GatedDetector:
    """detect() waits until the test opens the gate; records how many run at once."""

    def __init__(self, inner):
        self.inner, self.gate, self.inside, self.most = inner, threading.Event(), 0, 0

    def detect(self, images, verbose=0):
        self.inside += 1
        self.most = max(self.most, self.inside)
        assert self.gate.wait(30)
        self.inside -= 1
        return self.inner.detect(images)


def test_one_detector_for_every_session_and_inference_one_at_a_time(two_people, oracle, tmp_path):
    loads = []
    gated = GatedDetector(oracle)
    engine = server.Engine(detector_factory=lambda: loads.append(1) or gated)
    app = server.create_app(engine=engine, workdir=tmp_path)
    _, png = two_people
    answers = []

    def one_session():
        c = app.test_client()
        h = _session(c)
        pid = _upload(c, h, png).get_json()["photos"][0]["id"]
        answers.append(c.post("/api/detect", headers=h, json={"photo": pid}).get_json())

    threads = [threading.Thread(target=one_session) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while engine.busy < 3 and time.monotonic() < deadline:   # all three arrived: one in, two waiting
        time.sleep(0.01)
    assert engine.busy == 3 and gated.inside == 1
    gated.gate.set()
    for t in threads:
        t.join(30)
    assert len(loads) == 1 and gated.most == 1
    assert [len(a["instances"]) for a in answers] == [2, 2, 2]
    app.extensions["gone_app"].close()


def test_missing_detector_weights_is_one_message(two_people, tmp_path, monkeypatch):
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "empty_cache"))
    app = server.create_app(workdir=tmp_path)
    c = app.test_client()
    h = _session(c)
    pid = _upload(c, h, two_people[1]).get_json()["photos"][0]["id"]
    r = c.post("/api/detect", headers=h, json={"photo": pid})
    assert r.status_code == 503 and r.get_json()["error"].startswith("the detector cannot be loaded: no Mask R-CNN weights")


def test_hosts_origins_and_sessions(app, two_people):
    c = app.test_client()
    assert c.get("/", headers={"Host": "evil.example:8780"}).status_code == 400
    for host in ("127.0.0.1:8780", "localhost", "[::1]:8780", "[::1]"):
        assert c.get("/api/config", headers={"Host": host}).status_code == 200, host
    r = c.post("/api/session", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "another web site" in r.get_json()["error"]
    assert c.post("/api/session", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert c.post("/api/session", headers={"Origin": "http://localhost"}).status_code == 200
    r = _upload(c, {}, two_people[1])
    assert r.status_code == 403 and "session" in r.get_json()["error"]
    a, b = _session(c), _session(c)
    pid = _upload(c, a, two_people[1]).get_json()["photos"][0]["id"]
    assert c.post("/api/detect", headers=b, json={"photo": pid}).status_code == 404   # not b's photo
    assert c.get(f"/api/photos/{pid}/image", headers=b).status_code == 404
    page = c.get("/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff" and b"app.js" in page.data
    assert c.get("/static/app.js").status_code == 200


def test_bad_uploads_are_refused_with_a_message(app, two_people, monkeypatch):
    c = app.test_client()
    h = _session(c)
    cases = [(b"hello, not an image", 400, "not an image"),
             (two_people[1][:300], 400, "photo.png: ")]
    bomb = io.BytesIO()
    Image.new("1", (10000, 10000)).save(bomb, format="PNG")     # 100 megapixels in a few kB
    cases.append((bomb.getvalue(), 413, "too large"))
    for data, status, message in cases:
        r = _upload(c, h, data)
        assert r.status_code == status and message in r.get_json()["error"], r.get_json()
        assert "\n" not in r.get_json()["error"]
    r = c.post("/api/photos", headers=h, data=b"x" * (server.MAX_UPLOAD_BYTES + 10),
               content_type="application/octet-stream")
    assert r.status_code == 413 and "request too large" in r.get_json()["error"]
    monkeypatch.setattr(server, "MAX_PHOTOS", 2)
    for _ in range(2):
        assert _upload(c, h, two_people[1]).status_code == 200
    r = _upload(c, h, two_people[1])
    assert r.status_code == 413 and "at most 2 photos per session" in r.get_json()["error"]
    session_dir = app.extensions["gone_app"].session(h["X-Gone-Session"]).dir
    assert sorted(p.suffix for p in session_dir.iterdir()) == [".png", ".png"]   # nothing else left


def test_ids_are_never_paths(app, two_people):
    c = app.test_client()
    h = _session(c)
    pid = _upload(c, h, two_people[1], "../../etc/passwd.png").get_json()["photos"][0]
    assert pid["name"] == "passwd.png"
    for url in ("/api/results/..%2F..%2Fetc%2Fpasswd/download", "/api/results/x/../../etc",
                f"/api/photos/{pid['id']}%2F..%2F/image", "/api/results/ABC/download"):
        assert c.get(url, headers=h).status_code == 404, url
    for bad in ("../x", "/etc/passwd", 5, None):
        r = c.post("/api/detect", headers=h, json={"photo": bad})
        assert r.status_code == 404 and r.get_json()["error"] == "unknown photo id"
    r = c.post("/api/remove", headers=h, json={"photo": pid["id"], "remove": [1]})
    assert r.status_code == 400 and r.get_json()["error"] == "run detection first (POST /api/detect)"
    assert c.post("/api/detect", headers=h, json={"photo": pid["id"]}).status_code == 200
    r = c.post("/api/remove", headers=h, json={"photo": pid["id"], "remove": [7]})
    assert r.status_code == 400 and "'remove' must be a list" in r.get_json()["error"]
    r = c.post("/api/remove", headers=h, json={"photo": pid["id"], "remove": [], "strategy": "blur"})
    assert r.status_code == 400 and "unknown strategy" in r.get_json()["error"]
    r = c.post("/api/remove", headers=h, json={"photo": pid["id"], "remove": []})
    assert r.status_code == 400 and "nothing to remove" in r.get_json()["error"]


def test_photos_dir_lists_only_its_images(oracle, two_people, tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(two_people[1])
    (root / "sub" / "b.png").write_bytes(two_people[1])
    (root / "notes.txt").write_text("no")
    outside = tmp_path / "secret.png"
    outside.write_bytes(two_people[1])
    os.symlink(outside, root / "link.png")
    app = server.create_app(root, detector=oracle, workdir=tmp_path)
    c = app.test_client()
    h = _session(c)
    files = c.get("/api/browse", headers=h).get_json()["files"]
    assert sorted(f["name"] for f in files) == ["a.png", "sub/b.png"]
    assert all(f["id"].startswith("b") and "/" not in f["id"] for f in files)
    r = c.post("/api/photos", headers=h, json={"browse": [files[0]["id"]]})
    assert r.status_code == 200 and r.get_json()["photos"][0]["width"] == 160
    r = c.post("/api/photos", headers=h, json={"browse": [str(outside)]})
    assert r.status_code == 404
    app.extensions["gone_app"].close()
    assert not app.extensions["gone_app"].root.exists()
    noroot = server.create_app(detector=oracle, workdir=tmp_path).test_client()
    assert noroot.get("/api/browse", headers=_session(noroot)).status_code == 404


def test_cli_app_port_and_non_loopback_warning(stopped_server, capsys, tmp_path):
    assert cli.main(["app", "--port", "70000"]) == 2
    assert capsys.readouterr().err.strip() == "gone app: error: --port must be in 0..65535, got 70000"
    assert cli.main(["app", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    seen = []
    assert server.serve(host="0.0.0.0", port=1, out=seen.append) == 0
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    root = seen[0].split(" in ")[1].split(" (")[0]
    assert not os.path.exists(root)                                # temp folder removed at exit
    assert server.serve(port=1, out=seen.append) == 0
    assert "warning" not in capsys.readouterr().err and seen[-1] == "gone app: open http://127.0.0.1:1/ (Ctrl-C to stop)"


def test_gone_app_process_serves_and_removes_its_folder_on_sigterm(tmp_path, two_people):
    import json
    import pathlib
    import signal
    import subprocess
    import sys
    import urllib.request

    repo = pathlib.Path(__file__).resolve().parents[2]
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(two_people[1])
    log = open(tmp_path / "log.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "gone", "app", str(tmp_path / "photos"), "--port", "0"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=repo,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(repo)))
    try:
        deadline = time.monotonic() + 120
        text = ""
        while "open http://" not in text and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            log.seek(0)
            text = log.read()
        url = text.split("open ")[1].split()[0]
        folder = pathlib.Path(text.split("results in ")[1].split(" (removed")[0])
        assert folder.is_dir()
        config = json.load(urllib.request.urlopen(url + "api/config", timeout=30))
        assert config["photos_dir"] is True and config["default_inpainter"] == "auto"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not folder.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_decoded_photos_are_cached_a_few_at_a_time_and_errors_are_one_line(app, two_people, monkeypatch):
    scene, png = two_people
    state = app.extensions["gone_app"]
    state.images.size = 1
    c = app.test_client()
    h = _session(c)
    first = _upload(c, h, png, "a.png").get_json()["photos"][0]["id"]
    other = scene.image.copy()
    other[:10] = 0
    buf = io.BytesIO()
    Image.fromarray(other).save(buf, format="PNG")
    second = _upload(c, h, buf.getvalue(), "b.png").get_json()["photos"][0]["id"]
    assert len(state.images._items) == 1                        # only the latest stays decoded
    for pid, expect in ((first, scene.image), (second, other), (first, scene.image)):
        got = np.asarray(Image.open(io.BytesIO(c.get(f"/api/photos/{pid}/image", headers=h).data)))
        np.testing.assert_array_equal(got, expect)

    def boom(*a, **k):
        raise RuntimeError("boom\nsecond line")
    monkeypatch.setattr(state.engine, "remove", boom)
    brush = np.zeros((120, 160, 4), np.uint8)
    brush[:5, :5] = (255, 0, 0, 255)
    r = c.post("/api/remove", headers=h, json={"photo": first, "remove": [], "edits": _png_data_url(brush)})
    assert r.status_code == 500 and r.get_json() == {"error": "internal error: RuntimeError: boom"}
