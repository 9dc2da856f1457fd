"""A TCP relay on loopback that forwards a plaintext HTTP/2 connection unchanged and records
every frame in both directions, header blocks decoded (one HPACK decoder per direction, fed in
order) — so a test asserts on what crossed the wire, not only on what the peer made of it."""
import socket
import threading

import hpack

HEADERS, CONTINUATION, DATA, PING, GOAWAY = 1, 9, 0, 6, 7
END_HEADERS = 0x4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Frame:
    def __init__(self, direction, ftype, flags, stream, payload, connection=0):
        self.direction, self.type, self.flags, self.stream, self.payload = direction, ftype, flags, stream, payload
        self.connection = connection  # which relayed connection, from 1
        self.headers = None  # a HEADERS frame's decoded block (with its CONTINUATIONs)

    def __repr__(self):
        return f"Frame({self.direction}, type={self.type}, stream={self.stream}, len={len(self.payload)})"


class _Direction:
    def __init__(self, name, tap, preface, connection=0):
        self.name, self.tap, self.connection = name, tap, connection
        self.buf = b""
        self.skip = len(PREFACE) if preface else 0
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.pending = None  # a HEADERS frame waiting for its CONTINUATIONs

    def feed(self, chunk):
        self.buf += chunk
        if self.skip:
            n = min(self.skip, len(self.buf))
            self.buf, self.skip = self.buf[n:], self.skip - n
        while len(self.buf) >= 9 and len(self.buf) >= 9 + int.from_bytes(self.buf[:3], "big"):
            n = int.from_bytes(self.buf[:3], "big")
            f = Frame(self.name, self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                      self.buf[9:9 + n], self.connection)
            self.buf = self.buf[9 + n:]
            self._frame(f)

    def _frame(self, f):
        if f.type == HEADERS:
            block = f.payload
            if f.flags & 0x8:  # PADDED
                block = block[1:len(block) - block[0]]
            if f.flags & 0x20:  # PRIORITY
                block = block[5:]
            f.block = block
            if f.flags & END_HEADERS:
                self._decode(f)
            else:
                self.pending = f
        elif f.type == CONTINUATION and self.pending is not None:
            self.pending.block += f.payload
            if f.flags & END_HEADERS:
                self._decode(self.pending)
                self.pending = None
        with self.tap.lock:
            self.tap.frames.append(f)

    def _decode(self, h):
        h.headers = dict((k.decode() if isinstance(k, bytes) else k,
                          v.decode("latin-1") if isinstance(v, bytes) else v)
                         for k, v in self.decoder.decode(h.block))


class WireTap:
    """Listens on 127.0.0.1:`port` (0: any) and relays every connection to `target_port`."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.frames = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.target = f"127.0.0.1:{self.port}"
        self.closed = False
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the target is gone: refuse this one plainly, never hold it open
                client.close()
                continue
            with self.lock:
                self.connections += 1
                n = self.connections
            for src, dst, d in ((client, server, _Direction("request", self, True, n)),
                                (server, client, _Direction("response", self, False, n))):
                threading.Thread(target=self._pipe, args=(src, dst, d), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, direction):
        try:
            while True:
                chunk = src.recv(1 << 16)
                if not chunk:
                    break
                direction.feed(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        # shutdown first: on Linux, close() alone does not wake the thread blocked in accept(),
        # and that thread's reference keeps the port listening (a later test's server binding
        # the same port number on another address family then got our relay's connections).
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()

    # -- what was seen
    def headers(self, direction):
        with self.lock:
            return [f.headers for f in self.frames if f.direction == direction and f.headers is not None]

    def goaways(self, direction, connection=None):
        """(last stream id, error code, debug data) of every GOAWAY sent in `direction` (on the
        `connection`-th relayed connection, if given)."""
        with self.lock:
            frames = [f for f in self.frames if f.direction == direction and f.type == GOAWAY
                      and connection in (None, f.connection)]
        return [(int.from_bytes(f.payload[:4], "big") & 0x7FFFFFFF, int.from_bytes(f.payload[4:8], "big"),
                 f.payload[8:]) for f in frames]

    def pings(self, direction, ack=False, connection=None):
        """How many PINGs (or, with `ack`, PING acks) were sent in `direction`."""
        with self.lock:
            return sum(1 for f in self.frames if f.direction == direction and f.type == PING
                       and bool(f.flags & 1) == ack and connection in (None, f.connection))

    def messages(self, direction):
        """(stream, compressed flag, length) of every gRPC message sent in `direction`, from the
        DATA of each stream reassembled."""
        with self.lock:
            frames = [f for f in self.frames if f.direction == direction and f.type == DATA]
        bodies = {}
        for f in frames:
            bodies[f.stream] = bodies.get(f.stream, b"") + f.payload
        out = []
        for stream, body in bodies.items():
            at = 0
            while at + 5 <= len(body):
                n = int.from_bytes(body[at + 1:at + 5], "big")
                out.append((stream, body[at], n))
                at += 5 + n
        return out


if __name__ == "__main__":
    # For tests in other languages: `python3 wiretap.py TARGET_PORT` prints the port it relays
    # from, and once its stdin closes, what it saw as one JSON line:
    # {"request"|"response": {"headers": [...], "messages": [[stream, flag, length], ...],
    #  "goaways": [[last stream, code, debug], ...]}, "connections": n}.
    import json
    import sys

    tap = WireTap(int(sys.argv[1]))
    print(tap.port, flush=True)
    sys.stdin.read()
    seen = {d: {"headers": tap.headers(d), "messages": tap.messages(d),
                "goaways": [[last, code, debug.decode("latin-1")] for last, code, debug in tap.goaways(d)]}
            for d in ("request", "response")}
    seen["connections"] = tap.connections
    tap.close()
    print(json.dumps(seen), flush=True)
