"""Connection-level attacks: control-frame floods, more streams than advertised, rapid reset,
connections that never finish their preface, and a full file-descriptor table."""
import os
import socket
import struct
import threading
import time

import grpc

import h2raw
from conftest import TEST, GoodClient, c_host, py_host, unary


def flood_until_cut(host, make_frame, seconds=5, stream_setup=None):
    """Sends `make_frame()` frames as fast as it can until the server ends the connection.
    Returns (frames sent, the GOAWAY frame or None, server CPU seconds used)."""
    c = h2raw.RawH2(host.port)
    c.start()
    if stream_setup:
        stream_setup(c)
    goaway = []

    def read():
        goaway.append(c.until(lambda f: f.type == h2raw.GOAWAY, timeout=seconds + 5))

    reader = threading.Thread(target=read)
    reader.start()
    cpu0 = host.cpu_seconds()
    batch = make_frame() * 100
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and reader.is_alive():
        try:
            c.send(batch)
        except OSError:
            break
        sent += 100
    reader.join()
    used = host.cpu_seconds() - cpu0
    c.close()
    return sent, goaway[0], used


def open_stream(c):
    s = c.new_stream()
    c.headers(s, h2raw.request_headers(TEST + "Hold"))
    return s


FLOODS = {
    "empty DATA": (lambda: h2raw.frame(h2raw.DATA, 0, 1, b""), lambda c: open_stream(c)),
    "WINDOW_UPDATE": (lambda: h2raw.frame(h2raw.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)), None),
    "PING": (lambda: h2raw.frame(h2raw.PING, 0, 0, b"12345678"), None),
    "SETTINGS": (lambda: h2raw.settings(initial_window_size=65535), None),
    "PRIORITY": (lambda: h2raw.frame(h2raw.PRIORITY, 0, 3, struct.pack(">IB", 0, 16)), None),
    "unknown type": (lambda: h2raw.frame(0xEE, 0, 0, b"xx"), None),
}


def test_control_frame_floods_end_in_enhance_your_calm(host, record):
    for name, (make, setup) in FLOODS.items():
        with GoodClient(host.target) as good:
            sent, goaway, cpu = flood_until_cut(host, make, stream_setup=setup)
        record(f"{host.kind} {name}: frames written before the cut, server CPU (s)", [sent, round(cpu, 3)])
        assert goaway is not None, f"{name}: {sent} frames and no GOAWAY"
        assert goaway.error_code == h2raw.ENHANCE_YOUR_CALM, f"{name}: GOAWAY {goaway.error_code}"
        assert cpu < 1.0, f"{name}: the flood cost the server {cpu:.2f} s of CPU"
        good.assert_served(within=0.5)
    assert unary(host.target, b"after") == b"after"


def test_excess_streams_are_refused_one_by_one_and_the_rest_go_on():
    """The server advertises 100 streams; a client that opens a 101st gets that one refused
    (REFUSED_STREAM, as grpcio does) while its 100 calls carry on."""
    host = c_host()
    try:
        c = h2raw.RawH2(host.port)
        c.start()
        streams = [open_bidi(c) for _ in range(100)]
        extra = open_bidi(c)
        f = c.until(lambda f: f.type in (h2raw.RST_STREAM, h2raw.GOAWAY), timeout=10)
        assert f is not None and f.type == h2raw.RST_STREAM and f.stream == extra, f
        assert f.error_code == h2raw.REFUSED_STREAM
        for s in streams:  # each live call still echoes
            c.data(s, h2raw.grpc_message(b"m%d" % s))
        echoed = set()
        while len(echoed) < len(streams):
            f = c.until(lambda f: f.type in (h2raw.DATA, h2raw.GOAWAY, h2raw.RST_STREAM), timeout=10)
            assert f is not None and f.type == h2raw.DATA, f
            assert f.payload == h2raw.grpc_message(b"m%d" % f.stream)
            echoed.add(f.stream)
        for s in streams:
            c.data(s, b"", end_stream=True)
        c.close()
    finally:
        host.stop()


def open_bidi(c):
    s = c.new_stream()
    c.headers(s, h2raw.request_headers(TEST + "Bidi"))
    return s


def test_a_connection_that_never_finishes_its_preface_is_closed(record):
    host = c_host("--opt", "handshake-timeout-ms=300")
    try:
        silent = socket.create_connection(("127.0.0.1", host.port))
        half = socket.create_connection(("127.0.0.1", host.port))
        half.sendall(h2raw.PREFACE)  # the magic, but never SETTINGS
        t0 = time.monotonic()
        for sock in (silent, half):
            sock.settimeout(5)
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            sock.close()
        elapsed = time.monotonic() - t0
        record("both closed after (s, timeout 0.3)", round(elapsed, 3))
        assert 0.2 < elapsed < 2.0, elapsed
        # A prompt client is served.
        assert unary(host.target, b"prompt") == b"prompt"
    finally:
        host.stop()


def test_rapid_reset_against_the_python_server(record):
    """Streams opened and reset at once for 20 s: memory stays bounded and good calls are
    answered within a second once the attack stops."""
    host = py_host()
    try:
        rss0 = host.rss()
        peak = rss0
        stop = time.monotonic() + 20
        resets = 0
        goaways = 0
        while time.monotonic() < stop:
            c = h2raw.RawH2(host.port)
            c.start()
            try:
                while time.monotonic() < stop:
                    batch = b""
                    for _ in range(50):
                        s = c.new_stream()
                        block = c.encoder.encode(h2raw.request_headers(TEST + "Unary"))
                        batch += h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, s, block)
                        batch += h2raw.frame(h2raw.DATA, h2raw.END_STREAM, s, h2raw.grpc_message(b"r"))
                        batch += h2raw.frame(h2raw.RST_STREAM, 0, s, struct.pack(">I", h2raw.CANCEL))
                    c.send(batch)
                    resets += 50
                    if resets % 5000 == 0:
                        peak = max(peak, host.rss())
            except OSError:
                goaways += 1  # the server cut this connection off; open another
            c.close()
        peak = max(peak, host.rss())
        t0 = time.monotonic()
        assert unary(host.target, b"after", timeout=5) == b"after"
        first = time.monotonic() - t0
        with GoodClient(host.target) as good:
            time.sleep(1)
        record("streams reset, connections cut, RSS before/peak (MiB), first good call (ms)",
               [resets, goaways, rss0 >> 20, peak >> 20, round(first * 1000, 1)])
        assert first < 1.0, f"the first good call after the attack took {first:.2f} s"
        good.assert_served(within=0.5)
        assert peak - rss0 < 64 << 20, f"RSS grew from {rss0 >> 20} to {peak >> 20} MiB ({resets} resets)"
        assert host.alive()
    finally:
        host.stop()


def test_a_full_descriptor_table_costs_no_cpu_and_serving_resumes(record):
    host = c_host(prefix=("prlimit", "--nofile=48:48"))
    try:
        idle = []
        for _ in range(80):  # more than the server can accept: the rest wait in the backlog
            idle.append(socket.create_connection(("127.0.0.1", host.port)))
        fds = f"/proc/{host.proc.pid}/fd"
        deadline = time.monotonic() + 10
        while len(os.listdir(fds)) < 48 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the server has taken every descriptor it may
        assert len(os.listdir(fds)) >= 47, os.listdir(fds)
        cpu0, t0 = host.cpu_seconds(), time.monotonic()
        time.sleep(2)
        share = (host.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        record("CPU share with the fd table full", f"{share:.1%}")
        assert share <= 0.05, f"the server used {share:.0%} CPU with its fd table full"
        for s in idle:
            s.close()
        assert unary(host.target, b"resumed", timeout=10) == b"resumed"
    finally:
        host.stop()
