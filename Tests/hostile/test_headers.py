"""Header attacks and odd header values: an HPACK bomb (a small block decoding to hundreds of
megabytes), metadata over the limit, malformed grpc-timeout, bytes above 0x7F in a value."""
import struct
import time

import grpc
import hpack
import pytest

import h2raw

from conftest import MIB, TEST, GoodClient, c_host, py_host, rb_host, unary


def bomb_block(path, copies, size=4000):
    """A request header block: the pseudo headers, one `size`-byte field added to the HPACK
    dynamic table, then `copies` one-byte references to it (index 62: the table's first)."""
    head = hpack.Encoder().encode(h2raw.request_headers(path))
    name, value = b"x-bomb", b"A" * size
    enc = hpack.hpack.encode_integer
    # A literal with incremental indexing and a new name: 0x40, then name and value strings.
    literal = b"\x40" + bytes(enc(len(name), 7)) + name + bytes(enc(len(value), 7)) + value
    return head + literal + b"\xbe" * copies


def send_block(conn, stream, block, end_stream=False, max_frame=16384):
    """A header block as HEADERS + CONTINUATION frames."""
    chunks = [block[i:i + max_frame] for i in range(0, len(block), max_frame)]
    for i, chunk in enumerate(chunks):
        flags = (h2raw.END_HEADERS if i == len(chunks) - 1 else 0) | \
            (h2raw.END_STREAM if end_stream and i == 0 else 0)
        conn.send(h2raw.frame(h2raw.HEADERS if i == 0 else h2raw.CONTINUATION, flags, stream, chunk))


def test_hpack_bomb_is_refused_without_growing(host, record):
    rss0 = host.rss()
    with GoodClient(host.target) as good:
        c = h2raw.RawH2(host.port)
        c.start()
        s = c.new_stream()
        block = bomb_block(TEST + "Unary", copies=100_000)  # 104 KB that decode to 400 MB
        assert len(block) < 110_000
        send_block(c, s, block)
        c.data(s, h2raw.grpc_message(b"bomb"), end_stream=True)
        headers, _, rst = c.response(s, timeout=20)
        grown = host.rss() - rss0
        c.close()
    record(f"{host.kind}: block bytes, RSS growth (MiB), status", [len(block), round(grown / MIB, 2),
           headers.get("grpc-status")])
    assert rst is None, f"stream reset ({rst}) instead of a gRPC status"
    assert headers.get("grpc-status") == "8", headers  # RESOURCE_EXHAUSTED
    assert grown <= 10 * MIB, f"RSS grew by {grown / MIB:.1f} MiB"
    good.assert_served(within=1.0)
    assert unary(host.target, b"after") == b"after"


def test_metadata_over_the_limit_gets_resource_exhausted_like_grpcio():
    host = c_host("--opt", "max-metadata-size=4096")
    try:
        with grpc.insecure_channel(host.target) as ch:
            call = ch.unary_unary(TEST + "Unary")
            assert call(b"ok", metadata=[("x-small", "a" * 3000)], timeout=10) == b"ok"
            try:
                call(b"big", metadata=[("x-big", "a" * 5000)], timeout=10)
                raise AssertionError("a 5000-byte value passed a 4096-byte limit")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            assert call(b"again", timeout=10) == b"again"
    finally:
        host.stop()


def test_the_limit_is_advertised_in_settings():
    host = c_host("--opt", "max-metadata-size=5000")
    try:
        c = h2raw.RawH2(host.port)
        c.start()
        f = c.until(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK)
        values = dict(struct.unpack(">HI", f.payload[i:i + 6]) for i in range(0, len(f.payload), 6))
        assert values[h2raw.SETTINGS_MAX_HEADER_LIST_SIZE] == 5000
        assert values[h2raw.SETTINGS_MAX_CONCURRENT_STREAMS] == 100
        c.close()
    finally:
        host.stop()


def test_malformed_grpc_timeout_ends_the_call_with_internal(host):
    c = h2raw.RawH2(host.port)
    c.start()
    for bad in ["1X", "-1S", "99999999999H", "S"]:
        s = c.unary(TEST + "Unary", b"t", extra=[("grpc-timeout", bad)])
        headers, body, rst = c.response(s)
        assert headers.get("grpc-status") == "13", (bad, headers)  # INTERNAL
    s = c.unary(TEST + "Unary", b"fine", extra=[("grpc-timeout", "27778H")])  # 10^8 s
    headers, body, rst = c.response(s)
    assert headers.get("grpc-status") == "0" and body == h2raw.grpc_message(b"fine"), headers
    c.close()


# What a handler sees of a value with bytes above 0x7F, as the handler returns it (UTF-8):
# Python decodes as grpcio does (UTF-8, else Latin-1); Ruby passes the bytes through (a UTF-8
# String when they are UTF-8, else a binary one).
NON_ASCII = {
    "python": [("café".encode(), "café".encode()), (b"\xff\xfe", "\xff\xfe".encode()), (b"plain", b"plain")],
    "ruby": [("café".encode(), "café".encode()), (b"\xff\xfe", b"\xff\xfe"), (b"plain", b"plain")],
}


@pytest.mark.parametrize("kind", ["python", "ruby"])
def test_non_ascii_metadata_reaches_a_handler_and_every_worker_survives(kind):
    host = py_host() if kind == "python" else rb_host()
    try:
        c = h2raw.RawH2(host.port)
        c.start()
        for _ in range(3):  # more than once: a worker that died would be missing the next time
            for value, seen in NON_ASCII[kind]:
                s = c.unary(TEST + "Meta", extra=[("x-name", value)])
                headers, body, _ = c.response(s)
                assert headers.get("grpc-status") == "0", headers
                assert body == h2raw.grpc_message(seen), (value, body)
        c.close()
        # Every worker is still there: many calls at once are all answered.
        with grpc.insecure_channel(host.target) as ch:
            call = ch.unary_unary(TEST + "Unary")
            futures = [call.future(b"%d" % i, timeout=10) for i in range(64)]
            assert [f.result() for f in futures] == [b"%d" % i for i in range(64)]
        assert host.alive()
    finally:
        host.stop()


def test_declared_huge_messages_reserve_a_bounded_amount(record):
    """Under a 2 GiB receive limit, 90 streams each declare a message of 2 GiB - 1 and send only
    its 5-byte prefix and a few bytes: the server reserves a bounded buffer per stream (its
    address space grows by megabytes, not 90 x 2 GiB), and a good call is still answered."""
    host = c_host("--opt", f"max-recv-message-size={2**31 - 1}")
    try:
        def vm_size():
            with open(f"/proc/{host.proc.pid}/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        assert unary(host.target, b"warm") == b"warm"
        vm0, rss0 = vm_size(), host.rss()
        c = h2raw.RawH2(host.port)
        c.start()
        for _ in range(90):
            s = c.new_stream()
            c.headers(s, h2raw.request_headers(TEST + "Unary"))
            c.data(s, struct.pack(">BI", 0, 2**31 - 1) + b"abc")
        # The connection's frames are processed in order: once its PING is acknowledged, every
        # prefix above has been read.
        c.send(h2raw.frame(h2raw.PING, 0, 0, b"fence..."))
        c.until(lambda f: f.type == h2raw.PING and f.flags & h2raw.ACK)
        assert unary(host.target, b"after") == b"after"
        grown_vm, grown_rss = vm_size() - vm0, host.rss() - rss0
        record("huge declared messages: VmSize / RSS growth (MiB)",
               [round(grown_vm / MIB, 1), round(grown_rss / MIB, 1)])
        assert grown_vm <= 1024 * MIB, f"address space grew by {grown_vm / MIB:.0f} MiB"
        assert grown_rss <= 20 * MIB, f"RSS grew by {grown_rss / MIB:.1f} MiB"
        c.close()
    finally:
        host.stop()
