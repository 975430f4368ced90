"""Real browser (Debian's chromium, driven by Playwright's Python API, as the labeling app's test):
open the page, upload a synthetic photo with two people, see the detections, keep one and remove
the other, brush an extra area, run, download, and compare with `gone remove` on the same hole;
a broken file gets one readable message. Screenshots of each step go to the test's tmp folder."""
import os
import shutil
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from gone import cli, masks, subject
from gone.app import server
from gone.pipeline import PeopleRemover

CHROMIUM = os.environ.get("GONE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _browser_or_skip():
    if not shutil.which(CHROMIUM) and not os.path.isfile(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright   # a test dependency: missing = broken setup

    return sync_playwright


@pytest.fixture
def served(oracle, tmp_path):
    from werkzeug.serving import make_server

    app = server.create_app(detector=oracle, workdir=tmp_path)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", app.extensions["gone_app"]
    srv.shutdown()
    app.extensions["gone_app"].close()


def _image_to_page(page, x, y):
    box = page.locator("#edits").bounding_box()
    return box["x"] + (x + 0.5) * box["width"] / 160, box["y"] + (y + 0.5) * box["height"] / 120


def test_remove_the_passer_by_keep_the_subject_brush_download(served, two_people, tmp_path):
    sync_playwright = _browser_or_skip()
    url, state = served
    scene, png = two_people
    photo = tmp_path / "two people.png"
    photo.write_bytes(png)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 700}, accept_downloads=True)
        page.goto(url + "/")
        page.wait_for_selector("body[data-state=empty]")
        page.screenshot(path=shots / "1_empty.png")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("body[data-state=ready]")
        page.wait_for_selector("body[data-hole=fresh]")
        items = page.locator("#instances li")
        assert items.count() == 2
        assert items.nth(0).get_attribute("class") == "keep" and "subject" in items.nth(0).text_content()
        assert items.nth(1).get_attribute("class") == "remove"
        assert page.locator("#overlay polygon.keep").count() >= 1
        page.screenshot(path=shots / "2_detections.png")
        # toggles: the passer-by's outline to keep and back; the subject to remove and back
        page.locator("#overlay polygon[data-index='1']").first.click()
        assert items.nth(1).get_attribute("class") == "keep"
        page.locator("#overlay polygon[data-index='1']").first.click()
        items.nth(0).click()
        assert items.nth(0).get_attribute("class") == "remove"
        items.nth(0).click()
        assert [items.nth(i).get_attribute("class") for i in range(2)] == ["keep", "remove"]
        # brush a stroke in the top-left corner (image pixels 8..40 on row 10)
        page.click("#tool-brush")
        page.locator("#brush-size").evaluate("e => { e.value = 6; }")
        page.mouse.move(*_image_to_page(page, 8, 10))
        page.mouse.down()
        for x in range(12, 41, 4):
            page.mouse.move(*_image_to_page(page, x, 10))
        page.mouse.up()
        page.wait_for_selector("body[data-hole=fresh]")
        painted = ("() => { const c = document.getElementById('edits'); let n = 0; const d = c.getContext('2d')"
                   ".getImageData(0, 0, c.width, c.height).data; for (let k = 3; k < d.length; k += 4) "
                   "if (d[k]) n++; return n; }")
        n = page.evaluate(painted)
        assert n > 100
        page.click("#undo")
        assert page.evaluate(painted) == 0
        page.click("#redo")
        assert page.evaluate(painted) == n
        # the eraser across the passer-by's legs (row 80) takes a strip out of the hole
        page.click("#tool-eraser")
        page.mouse.move(*_image_to_page(page, 20, 80))
        page.mouse.down()
        page.mouse.move(*_image_to_page(page, 56, 80))
        page.mouse.up()
        page.wait_for_selector("body[data-hole=fresh]")
        page.screenshot(path=shots / "3_brush.png")
        page.select_option("#inpainter", "telea")
        page.click("#remove")
        page.wait_for_selector("body[data-state=done]")
        assert "filled by: OpenCV Telea" in page.text_content("#used")
        page.locator("#split").evaluate("e => { e.value = 40; e.dispatchEvent(new Event('input')); }")
        page.screenshot(path=shots / "4_result.png")
        with page.expect_download() as info:
            page.click("#download")
        download = info.value
        assert download.suggested_filename == "two_people_gone.png"
        got = (tmp_path / "download.png")
        download.save_as(got)
        with page.expect_download() as info:
            page.click("#download-all")
        info.value.save_as(tmp_path / "all.zip")
        browser.close()
    with zipfile.ZipFile(tmp_path / "all.zip") as z:
        assert z.namelist() == ["two_people_gone.png"] and z.read("two_people_gone.png") == got.read_bytes()
    # the hole the server used: the passer-by's pipeline hole plus the stroke, not the subject
    (session,) = state.sessions.values()
    (result,) = session.results.values()
    hole = np.asarray(Image.open(result.hole)) == 255
    passer = PeopleRemover(None, None).hole_for(
        subject.subset(masks.detections_from_masks(scene.person_masks), [1]),
        scene.image.shape, image=scene.image)
    stroke, erased = hole & ~passer, passer & ~hole
    assert not (hole & scene.person_masks[..., 0] & ~stroke).any()
    ys, xs = np.nonzero(stroke)
    assert ys.min() >= 5 and ys.max() <= 15 and xs.min() >= 4 and xs.max() <= 45 and stroke[10, 10:39].all()
    ys, xs = np.nonzero(erased)
    assert ys.min() >= 76 and ys.max() <= 84 and erased[80].sum() >= 5
    # `gone remove` with the same hole and inpainter writes the same bytes
    (tmp_path / "masks").mkdir()
    shutil.copy(result.hole, tmp_path / "masks" / "two people.png")
    assert cli.main(["remove", str(photo), "-o", str(tmp_path / "cli"), "--masks", str(tmp_path / "masks"),
                     "--inpainter", "telea", "-q"]) == 0
    assert (tmp_path / "cli" / "two people.png").read_bytes() == got.read_bytes()
    assert sorted(p.name for p in shots.iterdir()) == ["1_empty.png", "2_detections.png", "3_brush.png",
                                                       "4_result.png"]


def test_a_broken_file_gets_one_message(served, tmp_path):
    sync_playwright = _browser_or_skip()
    url, _ = served
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 700})
        page.goto(url + "/")
        page.wait_for_selector("body[data-state=empty]")
        page.set_input_files("#file", str(broken))
        page.wait_for_selector("body[data-state=error]")
        assert page.text_content("#msg") == "broken.jpg: cannot read the image (Truncated File Read)"
        assert page.locator("#photos li").count() == 0
        page.screenshot(path=tmp_path / "broken.png")
        browser.close()
