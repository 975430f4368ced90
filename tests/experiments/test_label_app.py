"""`gone label`: JSON API, blindness, traversal, bad requests, resume after a kill, export."""
import csv
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

from gone import labeling
from gone.labeling import app as label_app

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture()
def client(smoke_output):
    app = label_app.create_app([smoke_output], warn=lambda msg: None)
    return app.test_client()


def _label_all(client, rater, choose):
    typed = {}
    while True:
        nxt = client.get(f"/api/next?rater={rater}").get_json()
        if nxt["done"]:
            return typed
        item = nxt["item"]["id"]
        label = choose(len(typed))
        r = client.post("/api/labels", json={"rater": rater, "item_id": item, "label": label})
        assert r.status_code == 200, r.get_json()
        typed[item] = label


def test_next_label_progress_undo_and_per_rater_order(client):
    first = client.get("/api/next?rater=Alice").get_json()
    assert first["rater"] == "alice" and first["done"] is False
    assert first["progress"] == {"done": 0, "left": 9, "total": 9}
    item = first["item"]
    assert set(item) == {"id", "image", "original"}
    r = client.get(item["image"])
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data[:4] == b"\x89PNG"
    assert client.get(item["original"]).data[:4] == b"\x89PNG"
    r = client.post("/api/labels", json={"rater": "alice", "item_id": item["id"],
                                         "label": "Good", "tags": ["limbs", "shadows"]})
    assert r.status_code == 200 and r.get_json()["progress"] == {"done": 1, "left": 8, "total": 9}
    second = client.get("/api/next?rater=alice").get_json()["item"]
    assert second["id"] != item["id"]
    undo = client.post("/api/undo", json={"rater": "alice"}).get_json()
    assert undo["undone"] == item["id"] and undo["progress"]["done"] == 0
    assert client.get("/api/next?rater=alice").get_json()["item"]["id"] == item["id"]
    assert client.post("/api/undo", json={"rater": "alice"}).get_json()["undone"] is None
    # Every rater sees every item once, each in their own order.
    orders = {}
    for rater in ("bob", "carol"):
        seen = []
        while True:
            nxt = client.get(f"/api/next?rater={rater}").get_json()
            if nxt["done"]:
                break
            seen.append(nxt["item"]["id"])
            client.post("/api/labels", json={"rater": rater, "item_id": seen[-1], "label": "okay"})
        orders[rater] = seen
    assert len(orders["bob"]) == len(set(orders["bob"])) == 9
    assert sorted(orders["bob"]) == sorted(orders["carol"]) and orders["bob"] != orders["carol"]
    prog = client.get("/api/progress").get_json()
    assert prog["total"] == 9
    assert prog["raters"]["bob"] == {"done": 9, "left": 0, "total": 9}
    assert "alice" not in prog["raters"]     # her only label was undone


def test_nothing_in_the_answers_reveals_the_method(client, smoke_output):
    key = (smoke_output / "private" / "labeling_key.csv").read_text()
    secrets = re.compile(r"\b(box|mask|dilated|strategy|column)\b|synth_0|images/|result\.png|"
                         r"private|labeling_key")
    texts = [client.get("/").get_data(as_text=True)]
    nxt = client.get("/api/next?rater=alice")
    texts.append(nxt.get_data(as_text=True))
    texts.append(client.get("/api/progress").get_data(as_text=True))
    item = nxt.get_json()["item"]["id"]
    texts.append(client.post("/api/labels", json={"rater": "alice", "item_id": item,
                                                  "label": "solid"}).get_data(as_text=True))
    for text in texts:
        assert secrets.search(text.lower()) is None, secrets.search(text.lower())
    img = client.get(f"/img/{item}/result")
    assert "filename" not in img.headers.get("Content-Disposition", "")
    rid = [line.split(",")[0] for line in key.splitlines()[1:]]
    assert not any(r in " ".join(texts) for r in rid)    # even the sheet's ids stay on the server


@pytest.mark.parametrize("url", [
    "/img/../../../../etc/passwd", "/img/%2e%2e/%2e%2e/etc/passwd",
    "/img/%2e%2e%2f%2e%2e%2fetc%2fpasswd/result", "/img//etc/passwd/result",
    "/img/%2Fetc%2Fpasswd/result", "/img/..%5c..%5cprivate/result",
    "/private/labeling_key.csv", "/to_label/", "/per_image.csv", "/labeling.sqlite",
    "/static/x", "/img/iffffffffffffffff/result", "/img/{item}/key",
    "/img/{item}/../../run_info.json",
])
def test_traversal_and_unlisted_files_are_404(client, url):
    item = client.get("/api/next?rater=a").get_json()["item"]["id"]
    r = client.get(url.replace("{item}", item))
    assert r.status_code == 404
    assert b"root:" not in r.data and b"result_id" not in r.data


def test_symlinks_and_paths_out_of_the_folder_are_not_served(smoke_output, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret outside")
    sheet = smoke_output / "labeling_sheet.csv"
    rows = list(csv.DictReader(open(sheet)))
    # Row 0: a symlink inside to_label/ pointing out; row 1: an absolute path; row 2: '..'.
    link = smoke_output / "to_label" / "evil.png"
    link.symlink_to(secret)
    rows[0]["image_path"] = "to_label/evil.png"
    rows[1]["image_path"] = str(secret)
    rows[2]["image_path"] = "../secret.png"
    with open(sheet, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    warnings = []
    app = label_app.create_app([smoke_output], warn=warnings.append)
    c = app.test_client()
    assert c.get("/api/next?rater=a").get_json()["progress"]["total"] == 6
    assert len(warnings) == 1 and "3 sheet row(s) skipped" in warnings[0]
    served = set()
    while True:
        nxt = c.get("/api/next?rater=a").get_json()
        if nxt["done"]:
            break
        served.add(c.get(nxt["item"]["image"]).data)
        c.post("/api/labels", json={"rater": "a", "item_id": nxt["item"]["id"], "label": "good"})
    assert len(served) == 6 and not any(b"secret" in d for d in served)
    # A listed file replaced by a symlink out after start-up is refused too.
    app2 = label_app.create_app([smoke_output], warn=lambda m: None)
    c2 = app2.test_client()
    item = c2.get("/api/next?rater=z").get_json()["item"]
    target = app2.extensions["gone_labeler"].items[item["id"]].image
    target.unlink()
    target.symlink_to(secret)
    assert c2.get(item["image"]).status_code == 404


def test_several_output_folders_are_served_together(smoke_output, tmp_path):
    import shutil

    other = pathlib.Path(shutil.copytree(smoke_output, tmp_path / "table1"))
    warnings = []
    app = label_app.create_app([smoke_output, other, smoke_output], warn=warnings.append)
    c = app.test_client()
    assert warnings == [f"{smoke_output}: listed twice; served once"]
    typed = _label_all(c, "ann", lambda i: labeling.LABELS[i % 4])
    assert len(typed) == 18                   # the same result ids, kept apart per folder
    assert label_app.export([smoke_output, other], out=lambda m: None) == 0
    for folder in (smoke_output, other):
        rows = list(csv.DictReader(open(folder / "labels" / "ann.csv", encoding="utf-8")))
        assert len(rows) == 9 and (folder / label_app.DB_NAME).is_file()


def test_labels_of_an_earlier_run_are_neither_exported_nor_undone(smoke_output):
    state = label_app.Labeler([smoke_output], warn=lambda m: None)
    item = state.next_item("eve")
    state.put("eve", item, "good")
    state.stores[0].put("eve", "rdeadbeef", "solid")          # a result id no sheet lists now
    notes = []
    assert label_app.export([smoke_output], out=notes.append) == 0
    rows = list(csv.DictReader(open(smoke_output / "labels" / "eve.csv", encoding="utf-8")))
    assert [r["result_id"] for r in rows] == [item.result_id]
    assert any("1 label(s) of results no longer in labeling_sheet.csv" in n for n in notes)
    assert state.undo("eve") == item and state.undo("eve") is None


def test_label_examples_figure_is_served_once_it_exists(smoke_output):
    c = label_app.create_app([smoke_output], warn=lambda m: None).test_client()
    assert c.get("/api/definitions").get_json()["examples"] is None
    assert c.get("/examples.png").status_code == 404
    (smoke_output / label_app.EXAMPLES_FIGURE).write_bytes(b"\x89PNG examples")
    c = label_app.create_app([smoke_output], warn=lambda m: None).test_client()
    defs = c.get("/api/definitions").get_json()
    assert defs["examples"] == "/examples.png" and set(defs["labels"]) == set(labeling.LABELS)
    assert c.get("/examples.png").data == b"\x89PNG examples"


def test_bad_requests_get_4xx_with_a_message(client):
    item = client.get("/api/next?rater=a").get_json()["item"]["id"]
    cases = [
        (client.get("/api/next"), 400, "missing 'rater'"),
        (client.get("/api/next?rater=%20..%2F%20"), 400, "bad 'rater'"),
        (client.post("/api/labels", data="{not json", content_type="application/json"), 400,
         "malformed JSON"),
        (client.post("/api/labels", json=[1, 2]), 400, "malformed JSON"),
        (client.post("/api/labels", data="rater=a",
                     content_type="application/x-www-form-urlencoded"),
         415, "send JSON"),
        (client.post("/api/labels", json={"rater": "a", "item_id": "nope", "label": "good"}), 404,
         "unknown item_id"),
        (client.post("/api/labels", json={"rater": "a", "item_id": item, "label": "meh"}), 400,
         "unknown label"),
        (client.post("/api/labels", json={"rater": "a", "item_id": item, "label": 3}), 400,
         "unknown label"),
        (client.post("/api/labels", json={"rater": "a", "label": "good"}), 400,
         "missing 'item_id'"),
        (client.post("/api/labels", json={"rater": "a", "item_id": item, "label": "good",
                                          "tags": ["elbows"]}), 400, "bad 'tags'"),
        (client.post("/api/labels", json={"rater": "a", "item_id": item, "label": "good",
                                          "notes": "x" * 501}), 400, "'notes' must be"),
        (client.post("/api/labels", data="x" * 70000, content_type="application/json"), 413,
         "Too Large"),
        (client.post("/api/undo", json={}), 400, "missing 'rater'"),
        (client.get("/api/labels"), 405, "Method Not Allowed"),
    ]
    for resp, status, message in cases:
        assert resp.status_code == status, (status, message, resp.get_json())
        assert message in resp.get_json()["error"]
    assert client.get("/api/progress?rater=a").get_json()["progress"]["done"] == 0


def test_rater_names_are_sanitised():
    assert label_app.sanitize_rater(" Ålice O'Neil ") == "ålice-o-neil"
    assert label_app.sanitize_rater("../../etc/passwd") == "etc-passwd"
    assert label_app.sanitize_rater("ｂｏｂ") == "bob"                  # NFKC full-width
    assert label_app.sanitize_rater("李 明") == "李-明"
    assert len(label_app.sanitize_rater("x" * 300)) == 40
    for bad in ("", "  ", "../..", "\x00", None, 5):
        with pytest.raises(ValueError, match="rater"):
            label_app.sanitize_rater(bad)


def test_export_feeds_make_table_and_never_replaces_a_hand_filled_sheet(smoke_output, capsys):
    app = label_app.create_app([smoke_output], warn=lambda m: None)
    c = app.test_client()
    typed = {r: _label_all(c, r, lambda i, r=r: labeling.LABELS[(i + len(r)) % 4])
             for r in ("Zoë", "bob")}
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    files = sorted(p.name for p in (smoke_output / "labels").iterdir())
    assert files == ["bob.csv", "zoë.csv"]
    key = labeling.read_key(smoke_output / "private" / "labeling_key.csv")
    records = labeling.read_labeling_sheets(sorted((smoke_output / "labels").glob("*.csv")),
                                            smoke_output / "private" / "labeling_key.csv")
    assert len(records) == 18
    items = app.extensions["gone_labeler"].items
    expect = {("zoë" if r == "Zoë" else r, items[i].result_id): lab
              for r, t in typed.items() for i, lab in t.items()}
    assert {(rec.rater, rec.result_id): rec.label for rec in records} == expect
    assert set(key) == {rec.result_id for rec in records}
    # A second export replaces its own files; a sheet filled by hand is never replaced.
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    hand = smoke_output / "labels" / "bob.csv"
    hand.write_text("result_id,label\n")
    capsys.readouterr()
    assert label_app.export([smoke_output], out=lambda m: None) == 1
    assert "bob.csv exists and was not written by" in capsys.readouterr().err
    assert hand.read_text() == "result_id,label\n"


def _call(url, data=None):
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_resume_after_the_server_is_killed(smoke_output, tmp_path, label_server):
    proc, url = label_server(smoke_output, tmp_path / "server.log")
    try:
        answered = []
        for _ in range(4):
            item = _call(f"{url}/api/next?rater=alice")["item"]["id"]
            _call(f"{url}/api/labels", {"rater": "alice", "item_id": item, "label": "striped"})
            answered.append(item)
    finally:
        proc.send_signal(signal.SIGKILL)     # no clean shutdown
        proc.wait(30)
    proc, url = label_server(smoke_output, tmp_path / "server.log")
    try:
        nxt = _call(f"{url}/api/next?rater=alice")
        assert nxt["progress"] == {"done": 4, "left": 5, "total": 9}
        assert nxt["item"]["id"] not in answered
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    rows = list(csv.DictReader(open(smoke_output / "labels" / "alice.csv", encoding="utf-8")))
    assert [r["label"] for r in rows] == ["striped"] * 4


def test_concurrent_raters_store_every_label_once(smoke_output):
    """A small version of benchmarks/label_load.py (4 raters x all items, threads, real sockets)."""
    from werkzeug.serving import make_server

    app = label_app.create_app([smoke_output], warn=lambda m: None)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    errors = []

    def rater(name):
        try:
            while True:
                nxt = _call(f"{url}/api/next?rater={name}")
                if nxt["done"]:
                    return
                _call(f"{url}/api/labels", {"rater": name, "item_id": nxt["item"]["id"],
                                            "label": "okay"})
        except Exception as err:   # reported below
            errors.append(err)

    threads = [threading.Thread(target=rater, args=(f"r{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    server.shutdown()
    assert errors == []
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    for i in range(4):
        rows = list(csv.DictReader(open(smoke_output / "labels" / f"r{i}.csv")))
        assert len(rows) == len({r["result_id"] for r in rows}) == 9


def test_cli_errors_are_one_line(tmp_path, capsys):
    from gone import cli

    assert cli.main(["label", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "not a folder" in err
    assert cli.main(["label", str(tmp_path)]) == 2
    assert "no labeling_sheet.csv" in capsys.readouterr().err
    (tmp_path / "labeling_sheet.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert cli.main(["label", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot read the labeling sheet" in err and "Traceback" not in err


def test_non_loopback_host_warns(smoke_output, stopped_server, capsys):
    assert label_app.serve([smoke_output], host="0.0.0.0", port=1, out=lambda m: None) == 0
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    assert label_app.serve([smoke_output], port=1, out=lambda m: None) == 0
    assert "warning" not in capsys.readouterr().err


def test_loopback_server_refuses_foreign_host_headers(smoke_output):
    app = label_app.create_app([smoke_output], trusted_hosts=["127.0.0.1", "localhost"],
                               warn=lambda m: None)
    c = app.test_client()
    assert c.get("/api/progress", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert c.get("/api/progress", headers={"Host": "evil.example:8765"}).status_code == 400


@pytest.mark.parametrize("host,status", [("[::1]:8766", 200), ("[::1]", 200), ("[0:0:0:0:0:0:0:1]:8766", 200),
                                         ("127.0.0.1:8766", 200), ("LOCALHOST:8766", 200),
                                         ("[::2]:8766", 400), ("[2001:db8::1]:8766", 400),
                                         ("evil.example:8766", 400), ("[::1]x", 400)])
def test_ipv6_loopback_server_trusts_its_own_host_header(smoke_output, stopped_server, host, status):
    """`gone label DIR --host ::1`: the Host header the browser sends, [::1]:PORT, is trusted."""
    stopped_server.port = 8766
    assert label_app.serve([smoke_output], host="::1", port=8766, out=lambda m: None) == 0
    (bound, app), = stopped_server.served
    assert bound == "::1"
    r = app.test_client().get("/api/progress", headers={"Host": host})
    assert r.status_code == status
    refused = (f"400 Bad Request: Host {host!r} is not trusted: this server answers only to "
               "127.0.0.1, localhost, ::1 (DNS rebinding protection)")
    assert r.get_json().get("error") == (refused if status == 400 else None)


def test_export_never_follows_a_labels_link_out_of_the_output_folder(smoke_output, tmp_path, capsys):
    c = label_app.create_app([smoke_output], warn=lambda m: None).test_client()
    _label_all(c, "bob", lambda i: "good")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (smoke_output / "labels").symlink_to(outside, target_is_directory=True)
    capsys.readouterr()
    from gone import cli
    rc = cli.main(["label", str(smoke_output), "--export"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{smoke_output / 'labels'} resolves to {outside}, not a folder inside" in err
    assert list(outside.iterdir()) == []
    # a link that stays inside the folder is followed, as serving does
    (smoke_output / "labels").unlink()
    (smoke_output / "my_labels").mkdir()
    (smoke_output / "labels").symlink_to(smoke_output / "my_labels", target_is_directory=True)
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    assert [p.name for p in (smoke_output / "my_labels").iterdir()] == ["bob.csv"]


def test_export_neutralises_spreadsheet_formulas_in_notes(smoke_output):
    """OWASP CSV injection: notes starting with = + - @ (or tab / CR) are exported with a leading '."""
    app = label_app.create_app([smoke_output], warn=lambda m: None)
    c = app.test_client()
    notes = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "=1+1 ", "fine = 1",
             "ok", "", "'quoted"]
    expected = ["'=HYPERLINK(\"http://x\",\"y\")", "'+1+2", "'-2+3", "'@SUM(A1)", "'=1+1", "fine = 1",
                "ok", "", "'quoted"]
    sent = {}
    while True:
        nxt = c.get("/api/next?rater=eve").get_json()
        if nxt["done"]:
            break
        note = notes[len(sent)]
        assert c.post("/api/labels", json={"rater": "eve", "item_id": nxt["item"]["id"], "label": "good",
                                           "notes": note}).status_code == 200
        sent[nxt["item"]["id"]] = note
    assert len(sent) == len(notes) == 9
    # a tab or carriage return at the start cannot come through the page (notes are whitespace-
    # normalised); a row written into the store directly is normalised and neutralised on export
    store = label_app.LabelStore(smoke_output / label_app.DB_NAME)
    rid = next(r[0] for r in store.rows("eve"))
    store.put("mallory", rid, "good", (), "\t=cmd|' /C calc'!A0")
    store.put("oscar", rid, "good", (), "\r=1")
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    rows = list(csv.DictReader(open(smoke_output / "labels" / "eve.csv", encoding="utf-8", newline="")))
    item_of = {it.result_id: iid for iid, it in app.extensions["gone_labeler"].items.items()}
    got = {item_of[r["result_id"]]: r["notes"] for r in rows}
    assert {sent[i]: got[i] for i in sent} == dict(zip(notes, expected))
    mallory = list(csv.DictReader(open(smoke_output / "labels" / "mallory.csv", encoding="utf-8", newline="")))
    oscar = list(csv.DictReader(open(smoke_output / "labels" / "oscar.csv", encoding="utf-8", newline="")))
    assert mallory[0]["notes"] == "'=cmd|' /C calc'!A0" and oscar[0]["notes"] == "'=1"
    for cell in ("\t=1", "\r=1", "\n=1", "\uff1d1+1"):   # the rest of OWASP's list, for any other caller
        assert label_app.neutralise_cell(cell) == "'" + cell
    # the sheets still feed make_table (labels intact)
    records = labeling.read_labeling_sheets([smoke_output / "labels" / "eve.csv"],
                                            smoke_output / "private" / "labeling_key.csv")
    assert len(records) == 9 and {r.label for r in records} == {"good"}
