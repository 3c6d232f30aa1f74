"""Production hardening: authentication, Unix socket, slow clients, connection limits,
overload (503 + Retry-After, nothing lost), memory staying flat, scan limit."""
import os
import socket
import stat
import threading
import time

from pathlib import Path

import numpy as np

import images
from conftest import assert_error, decode_tensor, describe_error

SMALL = "odd_17x9.jpg"


def test_bearer_token_guards_everything_but_health(daemon_factory):
    d = daemon_factory({"auth_token": "s3cret"}, wait_ready=False)
    assert d.get("/healthz").status_code == 200
    assert d.get("/readyz").status_code == 200
    for path in ["/v1/profiles", "/metrics"]:
        r = d.get(path)
        err = assert_error(r, 401, "unauthorized", index=None)
        assert r.headers.get("WWW-Authenticate") == "Bearer", err
        assert d.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert d.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    data = images.get(SMALL).data
    assert_error(d.post(data), 401, "unauthorized", index=None)
    ok = d.post(data, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200, describe_error(ok)


def _unix_get(path: str, target: str) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n".encode())
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out


def test_unix_socket(daemon_factory, tmp_path):
    sock = str(tmp_path / "clipprep.sock")
    d = daemon_factory({"unix_socket": sock}, wait_ready=False)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    assert stat.S_ISSOCK(os.stat(sock).st_mode) and mode == 0o600, oct(mode)
    reply = _unix_get(sock, "/readyz")
    assert reply.startswith(b"HTTP/1.1 200") and b'"ready":true' in reply, reply[:200]
    assert d.stop() == 0
    assert not os.path.exists(sock)  # removed on exit


def test_slow_upload_is_cut_off_and_the_daemon_carries_on(daemon_factory):
    d = daemon_factory({"request_timeout_s": 1})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(b"POST /v1/preprocess HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    closed_after = None
    t0 = time.monotonic()
    for _ in range(40):  # one byte every 0.2 s: never idle long enough for connection_timeout_s
        try:
            s.sendall(b"x")
            time.sleep(0.2)
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - t0
            break
    s.close()
    assert closed_after is not None, "a trickling upload was never cut off"
    assert closed_after < 6
    assert d.post(images.get(SMALL).data).status_code == 200


def test_connection_limit(daemon_factory):
    """Over max_connections a new connection waits (unaccepted) until a slot frees."""
    d = daemon_factory({"max_connections": 3})
    idle = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(3)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=1)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        early = extra.recv(100)
    except socket.timeout:
        early = None
    assert early is None, f"a connection over max_connections was served: {early!r}"
    idle.pop().close()  # a slot frees: the waiting connection is accepted and answered
    extra.settimeout(10)
    assert extra.recv(100).startswith(b"HTTP/1.1 200")
    for s in idle + [extra]:
        s.close()


def test_flood_gets_503_with_retry_after_and_accepted_work_is_answered(daemon_factory):
    d = daemon_factory({"queue_capacity": 3, "cpu_workers": 1})
    big = images.get("hubble_4000x3000_q90_420.jpg").data
    results = []
    lock = threading.Lock()

    def client():
        import requests

        r = requests.post(d.url + "/v1/preprocess", data=big, timeout=120)
        with lock:
            results.append((r.status_code, r.headers.get("Retry-After"), r.content))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    statuses = sorted(s for s, _, _ in results)
    assert len(results) == 16, "every request must be answered"
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 1, statuses
    for status, retry, body in results:
        if status == 503:
            assert retry == "1" and b'"overloaded"' in body
    oks = [np.load(__import__("io").BytesIO(b)) for s, _, b in results if s == 200]
    assert all(np.array_equal(o, oks[0]) for o in oks)
    assert d.post(images.get(SMALL).data).status_code == 200


def test_memory_stays_flat_over_thousands_of_requests(daemon_factory):
    d = daemon_factory()
    small = images.get(SMALL).data
    png = images.get("px_1x1.png").data

    def rss_kib():
        for ln in open(f"/proc/{d.proc.pid}/status"):
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
        raise AssertionError

    def burst(n):
        for k in range(n):
            r = d.post(small if k % 3 else png, format=("npy", "raw", "json")[k % 3])
            assert r.status_code == 200
            if k % 50 == 0:  # and some errors, which must not leak either
                assert d.post(small[:100]).status_code == 400

    burst(300)  # warm-up: scratch buffers and allocator arenas reach their working size
    before = rss_kib()
    burst(2000)
    after = rss_kib()
    # AddressSanitizer's allocator (quarantine, size-class caches) moves RSS by +-20 MiB over
    # such a run whatever the daemon does (measured -14..+18 MiB on the same binary); there
    # LeakSanitizer checks leaks at exit and only a gross growth is caught here. A leaked
    # tensor per request would still be over 1 GiB.
    asan = b"__asan_init" in Path(d.argv[0]).read_bytes()
    limit = (64 if asan else 8) * 1024
    assert after - before < limit, f"RSS grew by {after - before} KiB over 2000 requests"


def test_progressive_scan_limit(daemon_factory):
    d = daemon_factory({"max_scans": 2})
    prog = images.get("astronaut_640x480_prog.jpg").data
    err = assert_error(d.post(prog), 400, "invalid_image", index=0)
    assert "scan" in err["message"]
    assert d.post(images.get("astronaut_640x480_q90_420.jpg").data).status_code == 200


def test_idle_and_slow_header_connections_are_closed(daemon_factory):
    """connection_timeout_s: a client that goes quiet mid-headers (or never sends a request)
    is disconnected; the daemon carries on."""
    d = daemon_factory({"connection_timeout_s": 1})
    half = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    half.sendall(b"POST /v1/preprocess HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    idle = socket.create_connection(("127.0.0.1", d.port), timeout=10)  # nothing at all
    for s in (half, idle):
        t0 = time.monotonic()
        try:
            got = s.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b"" or got.startswith(b"HTTP/1.1 4"), got
        assert time.monotonic() - t0 < 8, "an idle connection was kept open"
        s.close()
    assert d.post(images.get(SMALL).data).status_code == 200
