"""URL items in JSON input, fetched by the daemon with its SSRF policy, against a real HTTP
server on 127.0.0.1 (Python's http.server in a thread). Positive cases allow-list that server
(fetch_allow_private + fetch_allow_hosts); the rest prove what is refused: loopback by default
(by address and by a DNS name resolving to it), a redirect to a refused host or address, other
schemes, oversize and slow bodies, too many redirects."""
import base64
import http.server
import threading

import numpy as np
import pytest

import images
from conftest import assert_error, decode_npy, describe_error

NAMES = ["astronaut_640x480_q90_420.jpg", "rocket_333x500.png", "coffee_1000x667.webp"]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()  # /wait blocks until the test sets it

    def log_message(self, *a):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        try:
            if parts[0] == "img":
                return self._send(200, images.get(parts[1]).data,
                                  [("Content-Type", "application/octet-stream")])
            if parts[0] == "to":  # /to?<absolute URL>: a 302 there
                return self._send(302, b"", [("Location", query)])
            if parts[0] == "chain":  # /chain/N/name: N redirects, then the image
                n = int(parts[1])
                if n == 0:
                    return self._send(200, images.get(parts[2]).data)
                return self._send(302, b"", [("Location", f"/chain/{n - 1}/{parts[2]}")])
            if parts[0] == "chunked":  # no Content-Length: the cap applies while reading
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"\0" * 65536
                for _ in range(64):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
                return
            if parts[0] == "slow":  # headers, a few bytes, then nothing for a long while
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"\xff\xd8\xff")
                self.wfile.flush()
                type(self).release.wait(30)
                return
            if parts[0] == "wait":  # answers the image once the test releases it
                type(self).release.wait(30)
                return self._send(200, images.get(parts[1]).data)
            return self._send(404, b"not here")
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the daemon hanging up on a slow or oversize body is expected here


@pytest.fixture(scope="module")
def origin():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    _Handler.release.set()
    srv.shutdown()
    srv.server_close()


ALLOW = {"fetch_enabled": True, "fetch_allow_private": True, "fetch_allow_hosts": "127.0.0.1"}


def _post(d, items, **params):
    return d.session.post(d.url + "/v1/preprocess", json={"images": items}, params=params,
                          timeout=120)


@pytest.fixture(scope="module")
def expected(daemon):
    r = daemon.post_batch([images.get(n).data for n in NAMES])
    assert r.status_code == 200, describe_error(r)
    return decode_npy(r.content)


def test_urls_equal_multipart(daemon_factory, origin, expected):
    d = daemon_factory(ALLOW)
    items = [{"url": f"{origin}/img/{NAMES[0]}"},
             {"type": "image_url", "image_url": {"url": f"{origin}/img/{NAMES[1]}"}},
             f"{origin}/chain/2/{NAMES[2]}"]  # a plain URL string, after two redirects
    r = _post(d, items)
    assert r.status_code == 200, describe_error(r)
    assert np.array_equal(decode_npy(r.content), expected)
    # mixed with inline bytes, and the fetch counter moved
    data = images.get(NAMES[0]).data
    r = _post(d, [{"b64": base64.b64encode(data).decode()}, {"url": f"{origin}/img/{NAMES[1]}"}])
    assert r.status_code == 200, describe_error(r)
    assert np.array_equal(decode_npy(r.content), expected[:2])
    m = d.get("/metrics").text
    assert 'clipprep_fetch_total{result="ok"} 4' in m, m[-2000:]
    assert "clipprep_fetch_seconds_count 4" in m


def test_loopback_refused_by_default(daemon_factory, origin):
    d = daemon_factory({"fetch_enabled": True})
    good = {"b64": base64.b64encode(images.get(NAMES[1]).data).decode()}
    err = assert_error(_post(d, [good, {"url": f"{origin}/img/{NAMES[0]}"}]), 403,
                       "fetch_refused", index=1)
    assert "127.0.0.1" in err["message"]
    # a DNS name that resolves to loopback is refused on the resolved address
    port = origin.rsplit(":", 1)[1]
    err = assert_error(_post(d, [{"url": f"http://localhost:{port}/img/{NAMES[0]}"}]), 403,
                       "fetch_refused", index=0)
    assert "localhost" in err["message"]
    for url in ["http://[::1]:1/x", "http://0.0.0.0:1/x", "http://169.254.169.254/latest/",
                "http://10.0.0.1:1/x", "http://[::ffff:127.0.0.1]:1/x"]:
        assert_error(_post(d, [{"url": url}]), 403, "fetch_refused", index=0)


def test_private_allowed_still_refuses_metadata_and_zero(daemon_factory, origin):
    d = daemon_factory({"fetch_enabled": True, "fetch_allow_private": True})
    for url in ["http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:1/",
                "http://224.0.0.1/"]:
        assert_error(_post(d, [{"url": url}]), 403, "fetch_refused", index=0)
    r = _post(d, [{"url": f"{origin}/img/{NAMES[0]}"}])  # no allow-list: any host
    assert r.status_code == 200, describe_error(r)


def test_redirect_hops_are_rechecked(daemon_factory, origin):
    d = daemon_factory(ALLOW)
    port = origin.rsplit(":", 1)[1]
    # to a host outside the allow-list (same server, other name)
    assert_error(_post(d, [{"url": f"{origin}/to?http://localhost:{port}/img/{NAMES[0]}"}]),
                 403, "fetch_refused", index=0)
    # to the metadata address (never allowed) and to another scheme
    assert_error(_post(d, [{"url": f"{origin}/to?http://169.254.169.254/latest/"}]), 403,
                 "fetch_refused", index=0)
    assert_error(_post(d, [{"url": f"{origin}/to?file:///etc/passwd"}]), 403, "fetch_refused",
                 index=0)
    d2 = daemon_factory({"fetch_enabled": True, "fetch_allow_private": False})
    # a public-looking start is not needed: the first hop is refused already
    assert_error(_post(d2, [{"url": f"{origin}/to?{origin}/img/x"}]), 403, "fetch_refused")


def test_allow_list_refuses_other_hosts(daemon_factory, origin):
    d = daemon_factory({"fetch_enabled": True, "fetch_allow_private": True,
                        "fetch_allow_hosts": "*.images.example, cdn.example"})
    err = assert_error(_post(d, [{"url": f"{origin}/img/{NAMES[0]}"}]), 403, "fetch_refused",
                       index=0)
    assert "fetch_allow_hosts" in err["message"]


def test_too_many_redirects(daemon_factory, origin):
    d = daemon_factory(dict(ALLOW, fetch_max_redirects=2))
    r = _post(d, [{"url": f"{origin}/chain/2/{NAMES[1]}"}])
    assert r.status_code == 200, describe_error(r)
    err = assert_error(_post(d, [{"url": f"{origin}/chain/3/{NAMES[1]}"}]), 422,
                       "fetch_failed", index=0)
    assert "redirect" in err["message"]


def test_oversize_bodies(daemon_factory, origin):
    d = daemon_factory(dict(ALLOW, fetch_max_bytes=100000))
    big = "coffee_1000x667.webp" if len(images.get("coffee_1000x667.webp").data) > 100000 \
        else "chelsea_1920x1080_prog.jpg"
    assert len(images.get(big).data) > 100000
    assert_error(_post(d, [{"url": f"{origin}/img/{big}"}]), 413, "fetch_too_large", index=0)
    assert_error(_post(d, [{"url": f"{origin}/chunked"}]), 413, "fetch_too_large", index=0)
    # per request: each fits, together they do not
    small = images.get(NAMES[1]).data
    d2 = daemon_factory(dict(ALLOW, fetch_max_request_bytes=len(small) + 10))
    r = _post(d2, [{"url": f"{origin}/img/{NAMES[1]}"}])
    assert r.status_code == 200, describe_error(r)
    assert_error(_post(d2, [{"url": f"{origin}/img/{NAMES[1]}"}] * 2), 413, "fetch_too_large",
                 index=(0, 1))


def test_slow_body_times_out(daemon_factory, origin):
    d = daemon_factory(dict(ALLOW, fetch_timeout_ms=500))
    assert_error(_post(d, [{"url": f"{origin}/slow"}]), 422, "fetch_timeout", index=0)
    d2 = daemon_factory(dict(ALLOW, fetch_request_timeout_ms=500))
    err = assert_error(_post(d2, [{"url": f"{origin}/slow"}]), 422, "fetch_timeout", index=0)
    assert "fetch_request_timeout_ms" in err["message"]


def test_upstream_errors(daemon_factory, origin):
    d = daemon_factory(ALLOW)
    err = assert_error(_post(d, [{"url": f"{origin}/missing"}]), 422, "fetch_failed", index=0)
    assert "404" in err["message"]
    assert_error(_post(d, [{"url": "http://127.0.0.1:1/closed"}]), 422, "fetch_failed", index=0)


def test_fetch_does_not_block_other_requests(daemon_factory, origin):
    """A fetch waiting on a stalled origin holds neither the HTTP thread nor a worker: other
    requests are answered while it waits (the origin answers only after they are)."""
    _Handler.release.clear()
    d = daemon_factory(dict(ALLOW, cpu_workers=1, fetch_concurrency=1))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", _post(d, [{"url": f"{origin}/wait/{NAMES[0]}"}])))
    t.start()
    try:
        for n in NAMES:
            r = d.post(images.get(n).data)
            assert r.status_code == 200, describe_error(r)
        assert "r" not in result  # still waiting on the origin
    finally:
        _Handler.release.set()
    t.join(60)
    assert result["r"].status_code == 200, describe_error(result["r"])
    assert np.array_equal(decode_npy(result["r"].content), d.tensor(images.get(NAMES[0]).data))


def test_shutdown_during_a_fetch(daemon_factory, origin):
    """SIGTERM while a URL is being fetched: the request is answered (503, draining) once the
    fetch ends, no connection is left suspended, the daemon exits 0."""
    import signal
    import time

    _Handler.release.clear()
    d = daemon_factory(dict(ALLOW, drain_timeout_s=1))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", _post(d, [{"url": f"{origin}/wait/{NAMES[0]}"}])))
    t.start()
    try:
        deadline = time.monotonic() + 30  # (a bound on waiting, not a timing assertion)
        while "clipprep_inflight_requests 1" not in d.get("/metrics").text:
            assert time.monotonic() < deadline, "the fetching request never showed in flight"
            time.sleep(0.02)
        d.proc.send_signal(signal.SIGTERM)
        while not any('"draining"' in ln for ln in d.stderr_lines()):
            assert time.monotonic() < deadline, "no draining log line"
            time.sleep(0.02)
    finally:
        _Handler.release.set()
    t.join(60)
    assert_error(result["r"], 503, "unavailable", index=None)
    assert d.proc.wait(30) == 0
