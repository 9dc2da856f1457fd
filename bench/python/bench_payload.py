"""The payloads of the benchmark programs, as bench/c/bench_payload.h makes them: with
BENCH_COMPRESSION=gzip, text-like bytes (words of a 16-word list picked by an LCG, which gzip
packs about 3:1) and gzip on channels and servers; otherwise a-z repeated (requests) and 'x'
(streamed responses)."""
import os

GZIP = os.environ.get("BENCH_COMPRESSION") == "gzip"
# grpcio's option, which swiftgrpc honours too (2: gzip).
OPTIONS = [("grpc.default_compression_algorithm", 2)] if GZIP else []
_WORDS = [w.encode() for w in ("grpc", "swift", "payload", "compress", "message", "stream", "server",
                               "client", "the", "of", "and", "a", "to", "in", "is", "data")]


def text(n):
    out, x = bytearray(), 1
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out += _WORDS[(x >> 16) & 15] + b" "
    return bytes(out[:n])


def request(n):
    return text(n) if GZIP else bytes((ord("a") + i % 26) for i in range(n))


def stream_message(n):
    return text(n) if GZIP else b"x" * n
