"""Hostile TLS peers against the C host's TLS port: handshakes that never complete, garbage
instead of a ClientHello, a renegotiation attempt. Each is closed with bounded memory while a
well-behaved TLS client goes on being served."""
import os
import select
import socket
import ssl
import subprocess
import sys
import time

import grpc
import pytest

from conftest import MIB, TEST, c_host

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tls"))
import certs  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("pki")))


def tls_host(pki, *extra):
    return c_host("--tls-cert", os.path.join(pki, "server.pem"), "--tls-key", os.path.join(pki, "server.key"),
                  *extra)


def good_call(pki, port, payload=b"good"):
    creds = grpc.ssl_channel_credentials(certs.read(pki, "ca.pem"))
    with grpc.secure_channel(f"localhost:{port}", creds) as ch:
        return ch.unary_unary(TEST + "Unary")(payload, timeout=10)


def client_hello(pki):
    """The first flight of a real TLS client (built in memory)."""
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    ctx.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def closed_within(sock, seconds):
    """Seconds until the server closes `sock` (reading and dropping what it sends)."""
    sock.settimeout(seconds)
    t0 = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionError:
        pass
    return time.monotonic() - t0


def test_handshakes_that_never_complete_are_closed(pki, record):
    host = tls_host(pki, "--opt", "handshake-timeout-ms=400")
    try:
        rss0 = host.rss()
        hello = client_hello(pki)
        stalled = []
        for i in range(200):  # silent, half a ClientHello, or a whole one and then nothing
            s = socket.create_connection(("127.0.0.1", host.port))
            if i % 3 == 1:
                s.sendall(hello[: len(hello) // 2])
            elif i % 3 == 2:
                s.sendall(hello)
            stalled.append(s)
        grown = host.rss() - rss0
        assert good_call(pki, host.port) == b"good"
        waits = [closed_within(s, 5) for s in stalled]
        for s in stalled:
            s.close()
        record("RSS growth with 200 stalled handshakes (MiB), slowest close (s)",
               [round(grown / MIB, 2), round(max(w for w in waits if w is not None), 3)])
        assert all(w is not None for w in waits), "a stalled handshake was never closed"
        assert grown < 16 * MIB, f"200 stalled handshakes grew the server by {grown / MIB:.1f} MiB"
        assert good_call(pki, host.port, b"after") == b"after"
    finally:
        host.stop()


def test_garbage_instead_of_a_client_hello_is_closed_at_once(pki):
    host = tls_host(pki)
    try:
        for junk in (os.urandom(65536), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", host.port))
            s.sendall(junk)
            wait = closed_within(s, 5)
            s.close()
            assert wait is not None and wait < 1.0, wait
        assert good_call(pki, host.port) == b"good"
    finally:
        host.stop()


def test_renegotiation_is_refused(pki):
    host = tls_host(pki)
    try:
        p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{host.port}", "-tls1_2",
                              "-alpn", "h2", "-CAfile", os.path.join(pki, "ca.pem")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = b""
        # The handshake is done, and the server's HTTP/2 SETTINGS (its first record of
        # application data, printed raw by s_client) has arrived: application data still in
        # flight when the renegotiation starts would fail s_client with "unexpected record".
        settings = b"\x04\x00\x00\x00\x00\x00"  # type SETTINGS, no flags, stream 0
        deadline = time.monotonic() + 10
        while b"Verify return code" not in out or settings not in out.split(b"Verify return code", 1)[1]:
            assert time.monotonic() < deadline, out
            ready, _, _ = select.select([p.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)  # unbuffered: select sees all there is
            assert chunk, out
            out += chunk
        p.stdin.write(b"R\n")  # s_client: renegotiate
        p.stdin.flush()
        rest, _ = p.communicate(timeout=10)
        out += rest
        assert b"RENEGOTIATING" in out and b"no renegotiation" in out, out[-2000:]
        assert good_call(pki, host.port) == b"good"
        assert host.alive()
    finally:
        host.stop()
