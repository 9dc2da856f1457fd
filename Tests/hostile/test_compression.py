"""Compressed requests on the wire, polite and hostile, against every host (C, Python, Ruby):
gzip and deflate inflated by the library; a zip bomb stopped at the receive limit having grown
the server by no more than that; corrupt data, an unknown encoding and a compressed flag without
an encoding refused with gRPC's codes; the server advertising what it decodes."""
import gzip
import struct
import zlib

import h2raw

from conftest import MIB, TEST, GoodClient, unary


def compressed_message(payload: bytes) -> bytes:
    """A length-prefixed message with the compressed flag set."""
    return b"\x01" + struct.pack(">I", len(payload)) + payload


def call(host, encoding, body, flag_message=None):
    """One unary call on a raw connection with `grpc-encoding: encoding` (None: no header) and
    DATA `flag_message` (default: `body` framed with the compressed flag). Returns
    (headers, DATA bytes, RST code)."""
    c = h2raw.RawH2(host.port)
    try:
        c.start()
        s = c.new_stream()
        extra = [("grpc-encoding", encoding)] if encoding else []
        c.headers(s, h2raw.request_headers(TEST + "Unary", extra=extra))
        data = compressed_message(body) if flag_message is None else flag_message
        chunks = [data[i:i + 16384] for i in range(0, len(data), 16384)] or [b""]  # max frame size
        for i, chunk in enumerate(chunks):
            c.data(s, chunk, end_stream=i == len(chunks) - 1)
        return c.response(s, timeout=20)
    finally:
        c.close()


def test_gzip_and_deflate_requests_are_inflated(host):
    text = b"a compressible request " * 200
    for encoding, packed in [("gzip", gzip.compress(text)), ("deflate", zlib.compress(text))]:
        headers, body, rst = call(host, encoding, packed)
        assert rst is None and headers.get("grpc-status") == "0", (encoding, headers)
        assert body == h2raw.grpc_message(text), encoding  # the echo, sent uncompressed
        assert headers.get("grpc-accept-encoding") == "identity,deflate,gzip"
    # A message may go uncompressed in a compressed call (flag 0).
    headers, body, _ = call(host, "gzip", None, flag_message=h2raw.grpc_message(b"plain"))
    assert headers.get("grpc-status") == "0" and body == h2raw.grpc_message(b"plain")


def test_a_zip_bomb_stops_at_the_receive_limit(host, record):
    # 48 MiB in ~47 KB: inside the default stream window, 12 times the 4 MiB receive limit.
    bomb = gzip.compress(b"\0" * (48 * MIB), compresslevel=9)
    assert len(bomb) < 60_000
    with GoodClient(host.target) as good:
        peak0 = host.peak_rss()  # a fresh process: its high-water mark so far
        headers, body, rst = call(host, "gzip", bomb)
        grown = host.peak_rss() - peak0
    record(f"{host.kind}: bomb bytes, peak RSS growth (MiB), status",
           [len(bomb), round(grown / MIB, 2), headers.get("grpc-status")])
    assert rst is None and headers.get("grpc-status") == "8", headers  # RESOURCE_EXHAUSTED
    assert body == b""
    # Inflating it whole would take the peak up by its 48 MiB; the limit is 4 MiB.
    assert grown <= 12 * MIB, f"peak RSS grew by {grown / MIB:.1f} MiB inflating a bomb"
    good.assert_served(within=1.0)
    assert unary(host.target, b"after") == b"after"


def test_corrupt_data_unknown_encodings_and_a_flag_without_encoding_are_refused(host):
    good = gzip.compress(b"some request bytes " * 50)
    corrupt = good[:10] + bytes(b ^ 0x5A for b in good[10:-8]) + good[-8:]
    headers, _, rst = call(host, "gzip", corrupt)
    assert rst is None and headers.get("grpc-status") == "13", headers  # INTERNAL
    headers, _, _ = call(host, "gzip", good[:-5])  # truncated
    assert headers.get("grpc-status") == "13", headers
    headers, _, _ = call(host, "deflate", good)  # gzip data under the deflate name
    assert headers.get("grpc-status") == "13", headers
    headers, _, _ = call(host, "snappy", good)
    assert headers.get("grpc-status") == "12", headers  # UNIMPLEMENTED, and what we accept:
    assert headers.get("grpc-accept-encoding") == "identity,deflate,gzip", headers
    headers, _, _ = call(host, None, good)  # the compressed flag, no grpc-encoding
    assert headers.get("grpc-status") == "13", headers
    assert unary(host.target, b"still") == b"still"
