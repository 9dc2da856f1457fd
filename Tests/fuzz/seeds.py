"""Writes seed inputs for the fuzz targets into DIR/server and DIR/deframer: well-formed
client traffic (what follows the HTTP/2 client magic) for each RPC kind and some edge cases,
built with the hostile suite's raw HTTP/2 peer, so the fuzzers start deep in the protocol."""
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hostile"))
import h2raw  # noqa: E402
import hpack  # noqa: E402


def conversation(*requests, extra=b""):
    enc = hpack.Encoder()
    out = h2raw.settings(initial_window_size=65535)
    sid = 1
    for path, headers, messages, end in requests:
        block = enc.encode(h2raw.request_headers(path, extra=headers))
        out += h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, sid, block)
        for i, m in enumerate(messages):
            last = end and i == len(messages) - 1
            out += h2raw.frame(h2raw.DATA, h2raw.END_STREAM if last else 0, sid, h2raw.grpc_message(m))
        if end and not messages:
            out += h2raw.frame(h2raw.DATA, h2raw.END_STREAM, sid, b"")
        sid += 2
    return out + extra


def main(root):
    server = os.path.join(root, "server")
    deframer = os.path.join(root, "deframer")
    os.makedirs(server, exist_ok=True)
    os.makedirs(deframer, exist_ok=True)
    seeds = {
        "unary": conversation(("/f.F/U", [], [b"hello"], True)),
        "server_stream": conversation(("/f.F/S", [("grpc-timeout", "5S")], [b"abc"], True)),
        "client_stream": conversation(("/f.F/C", [("x-a", "1"), ("x-b-bin", "AAEC")], [b"a", b"b"], True)),
        "bidi": conversation(("/f.F/B", [], [b"1", b"2", b"3"], True)),
        "many": conversation(*[("/f.F/U", [], [b"m"], True)] * 5, ("/f.F/X", [], [b"none"], True)),
        "control": conversation(("/f.F/B", [], [b"x"], False), extra=
                                h2raw.frame(h2raw.PING, 0, 0, b"12345678")
                                + h2raw.frame(h2raw.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1000))
                                + h2raw.frame(h2raw.RST_STREAM, 0, 1, struct.pack(">I", 8))
                                + h2raw.frame(h2raw.PRIORITY, 0, 3, struct.pack(">IB", 0, 16))
                                + h2raw.frame(h2raw.GOAWAY, 0, 0, struct.pack(">II", 0, 0))),
        "bad_timeout": conversation(("/f.F/U", [("grpc-timeout", "99999999999H")], [b"t"], True)),
    }
    for name, data in seeds.items():
        with open(os.path.join(server, name), "wb") as f:
            f.write(data)
    packed = gzip.compress(b"inflate me " * 20)
    bomb = gzip.compress(b"\0" * 4096)  # over the fuzz target's 1024-byte limit
    for i, data in enumerate([b"\x03" + h2raw.grpc_message(b"abc") * 3,
                              b"\x00" + h2raw.grpc_message(b"") + b"\x00\x00\x00\x04\x00",
                              b"\x07" + b"\x01\x00\x00\x00\x01x",
                              # top bit: the call is gzip; compressed and plain messages mixed
                              b"\x85" + b"\x01" + struct.pack(">I", len(packed)) + packed
                              + h2raw.grpc_message(b"plain"),
                              b"\x9f" + b"\x01" + struct.pack(">I", len(bomb)) + bomb]):
        with open(os.path.join(deframer, f"seed{i}"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
