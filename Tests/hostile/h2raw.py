"""A raw HTTP/2 peer for the hostile-peer tests: frames built and parsed by hand (HPACK by the
`hpack` package), so a test can send what no polite client would — and see exactly what the
server answers."""
import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

SETTINGS_HEADER_TABLE_SIZE = 1
SETTINGS_MAX_CONCURRENT_STREAMS = 3
SETTINGS_INITIAL_WINDOW_SIZE = 4
SETTINGS_MAX_HEADER_LIST_SIZE = 6

NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x7, 0x8, 0xB


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def settings(**values):
    ids = {"initial_window_size": SETTINGS_INITIAL_WINDOW_SIZE,
           "max_concurrent_streams": SETTINGS_MAX_CONCURRENT_STREAMS,
           "header_table_size": SETTINGS_HEADER_TABLE_SIZE}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in values.items()))


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def request_headers(path, authority="localhost", extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra]


class Frame:
    def __init__(self, ftype, flags, stream, payload):
        self.type, self.flags, self.stream, self.payload = ftype, flags, stream, payload

    @property
    def error_code(self):
        """RST_STREAM and GOAWAY: the HTTP/2 error code."""
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    def __repr__(self):
        return f"Frame(type={self.type}, flags={self.flags:#x}, stream={self.stream}, len={len(self.payload)})"


class RawH2:
    """One connection. `start` sends the preface and SETTINGS; `frames` reads what comes."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.buf = b""
        self.closed = False
        self.next_stream = 1

    def start(self, **setting_values):
        self.send(PREFACE + settings(**setting_values))

    def send(self, data):
        self.sock.sendall(data)

    def new_stream(self):
        s = self.next_stream
        self.next_stream += 2
        return s

    def headers(self, stream, headers, end_stream=False):
        block = self.encoder.encode(headers)
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block))

    def data(self, stream, payload, end_stream=False):
        self.send(frame(DATA, END_STREAM if end_stream else 0, stream, payload))

    def rst(self, stream, code=CANCEL):
        self.send(frame(RST_STREAM, 0, stream, struct.pack(">I", code)))

    def unary(self, path, payload=b"", extra=()):
        """Sends a whole unary request; returns its stream id."""
        s = self.new_stream()
        self.headers(s, request_headers(path, extra=extra))
        self.data(s, grpc_message(payload), end_stream=True)
        return s

    def read_frame(self, deadline):
        """The next frame, or None at EOF or when `deadline` (monotonic s) passes."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return None
            except OSError:
                self.closed = True
                return None
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        f = Frame(self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                  self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        if f.type == SETTINGS and not f.flags & ACK:
            try:
                self.send(frame(SETTINGS, ACK, 0))
            except OSError:
                self.closed = True
        return f

    def until(self, predicate, timeout=10):
        """Reads frames until `predicate(frame)` holds; returns that frame (None on timeout/EOF).
        Header blocks are decoded into `frame.headers`."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(deadline)
            if f is None:
                return None
            if f.type == HEADERS:
                f.headers = dict((k.decode() if isinstance(k, bytes) else k,
                                  v.decode() if isinstance(v, bytes) else v)
                                 for k, v in self.decoder.decode(f.payload))
            if predicate(f):
                return f

    def response(self, stream, timeout=10):
        """Reads until `stream` ends; returns (headers of every block merged, DATA bytes, RST code)."""
        merged, body = {}, b""
        deadline = time.monotonic() + timeout
        while True:
            f = self.until(lambda f: f.stream == stream, max(0.0, deadline - time.monotonic()))
            if f is None:
                return merged, body, None
            if f.type == HEADERS:
                merged.update(f.headers)
            elif f.type == DATA:
                body += f.payload
            elif f.type == RST_STREAM:
                return merged, body, f.error_code
            if f.flags & END_STREAM and f.type in (HEADERS, DATA):
                return merged, body, None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
