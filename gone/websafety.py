"""The safety pieces shared by the web apps (``gone label``, ``gone app``).

- **Loopback by default.** ``is_loopback(host)``; ``warn_if_exposed`` prints one warning line
  when the app listens on another address (``--host 0.0.0.0``).
- **Host check (DNS rebinding).** A page of another site can point its own DNS name at
  127.0.0.1 and then talk to a loopback server as "same origin". On a loopback server, a request
  whose ``Host`` header is not a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``, with or
  without a port) is refused (400).
- **Origin check.** A state-changing request (POST, PUT, PATCH, DELETE) that a browser marks as
  coming from another origin (``Origin`` not equal to this server's ``scheme://Host``, or
  ``Sec-Fetch-Site: cross-site``) is refused (403), so a web page open in the same browser cannot
  drive the app. Requests without these headers (command-line clients) pass.
- **Security headers** on every answer: ``Content-Security-Policy`` (given per app),
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, and ``Cache-Control: no-store`` on JSON.
"""
from __future__ import annotations

import re
import sys
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def is_loopback(host) -> bool:
    """True for the loopback names (an IPv6 one with or without brackets)."""
    return canonical_host(host) in LOOPBACK_NAMES


def canonical_host(name) -> str:
    """A host name or IP literal (IPv6 with or without brackets) in one spelling: lower case, no
    trailing dot, IP addresses normalised (``0:0:0:0:0:0:0:1`` -> ``::1``)."""
    import ipaddress
    name = str(name).strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


# name, name:port, [v6], [v6]:port (RFC 7230 section 5.4). Werkzeug's own trusted-host check splits
# at the first ':' and so mishandles IPv6 literals.
_HOST_HEADER = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?|([A-Za-z0-9.-]+)(?::\d{1,5})?")


def host_name(header):
    """The host of a ``Host`` header without its port, canonical (``[::1]:8780`` -> ``::1``);
    None if malformed."""
    match = _HOST_HEADER.fullmatch((header or "").strip())
    if not match:
        return None
    return canonical_host(match.group(1) or match.group(2))


def host_allowed(header, allowed=LOOPBACK_NAMES) -> bool:
    """True when the ``Host`` header names one of ``allowed`` (any port)."""
    name = host_name(header)
    return name is not None and name in {canonical_host(a) for a in allowed}


def cross_origin(method, headers, scheme, host_header) -> bool:
    """True when a state-changing request comes from a page of another origin."""
    if method.upper() not in STATE_CHANGING:
        return False
    if (headers.get("Sec-Fetch-Site") or "").lower() == "cross-site":
        return True
    origin = headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    parts = urlsplit(origin)
    return parts.scheme != scheme or (parts.netloc or "").lower() != (host_header or "").lower()


def install(app, csp, loopback_only=True, trusted_hosts=None):
    """Adds the Host check (when ``loopback_only`` or ``trusted_hosts``), the Origin check and the
    security headers to a Flask ``app``. Refusals raise werkzeug's BadRequest / Forbidden, so
    the app's own HTTPException handler formats them."""
    from flask import request
    from werkzeug.exceptions import BadRequest, Forbidden

    hosts = tuple(trusted_hosts) if trusted_hosts else (LOOPBACK_NAMES if loopback_only else None)

    @app.before_request
    def _check_request():
        if hosts is not None and not host_allowed(request.headers.get("Host"), hosts):
            raise BadRequest(f"Host {request.headers.get('Host')!r} is not trusted: this server answers "
                             "only to " + ", ".join(hosts) + " (DNS rebinding protection)")
        if cross_origin(request.method, request.headers, request.scheme, request.headers.get("Host")):
            raise Forbidden("request from another web site refused")

    @app.after_request
    def _headers(resp):
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = csp
        if resp.mimetype == "application/json":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    return app


def warn_if_exposed(host, prog, what):
    """One warning line on stderr when ``host`` is not a loopback address."""
    if not is_loopback(host):
        print(f"{prog}: warning: listening on {host}: anyone who can reach this machine {what}; "
              "use the default 127.0.0.1 unless you trust the network", file=sys.stderr, flush=True)
        return True
    return False


def shown_url(host, port) -> str:
    """``http://host:port/`` with IPv6 addresses in brackets."""
    host = str(host)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve_until_interrupted(server):
    """Run a Werkzeug ``server`` until Ctrl-C (or SIGTERM turned into KeyboardInterrupt), then
    close its socket."""
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
