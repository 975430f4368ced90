"""gone.websafety: Host parsing and checks, Origin checks, headers, the exposure warning."""
import pytest
from flask import Flask

from gone import websafety

pytestmark = pytest.mark.jax  # no Keras


@pytest.mark.parametrize("header, name", [
    ("127.0.0.1:8780", "127.0.0.1"), ("LOCALHOST", "localhost"), ("[::1]:8780", "::1"), ("[::1]", "::1"),
    ("evil.example:80", "evil.example"), ("[::1]x", None), ("[::1", None), ("::1", None), ("", None),
    (None, None)])
def test_host_name(header, name):
    assert websafety.host_name(header) == name


def test_host_allowed_and_loopback():
    for ok in ("127.0.0.1:1", "localhost:8765", "[::1]:8765", "[::1]"):
        assert websafety.host_allowed(ok)
    for bad in ("127.0.0.1.evil.example", "evil.example", "0.0.0.0:80", "[::2]:80", "localhost:x"):
        assert not websafety.host_allowed(bad)
    assert all(websafety.is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]"))
    assert not websafety.is_loopback("0.0.0.0")


def test_install_checks_and_headers(capsys):
    app = Flask("t")
    app.add_url_rule("/x", "x", lambda: "ok", methods=["GET", "POST"])
    websafety.install(app, "default-src 'none'")
    c = app.test_client()
    r = c.get("/x", headers={"Host": "[::1]:8780"})
    assert r.status_code == 200 and r.headers["Content-Security-Policy"] == "default-src 'none'"
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
    assert c.get("/x", headers={"Host": "rebound.example:8780"}).status_code == 400
    same = {"Host": "127.0.0.1:8780", "Origin": "http://127.0.0.1:8780"}
    assert c.post("/x", headers=same).status_code == 200
    assert c.post("/x", headers={**same, "Origin": "http://evil.example"}).status_code == 403
    assert c.post("/x", headers={**same, "Origin": "null"}).status_code == 403
    assert c.post("/x", headers={**same, "Origin": "https://127.0.0.1:8780"}).status_code == 403
    assert c.post("/x", headers={"Host": "127.0.0.1:8780", "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert c.post("/x", headers={"Host": "127.0.0.1:8780"}).status_code == 200   # curl: no Origin
    open_app = Flask("u")
    open_app.add_url_rule("/x", "x", lambda: "ok")
    websafety.install(open_app, "default-src 'none'", loopback_only=False)
    assert open_app.test_client().get("/x", headers={"Host": "192.168.1.5:8780"}).status_code == 200
    assert websafety.warn_if_exposed("0.0.0.0", "gone app", "can do things") is True
    assert capsys.readouterr().err.startswith("gone app: warning: listening on 0.0.0.0: anyone who")
    assert websafety.warn_if_exposed("127.0.0.1", "gone app", "x") is False
    assert websafety.shown_url("::1", 5) == "http://[::1]:5/"
