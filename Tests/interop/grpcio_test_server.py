"""A grpcio (Python) server for the client tests: service swiftgrpc.test.Test with the same
methods and semantics as Tests/c/interop_server.c, so every client scenario runs against both.

  Unary         echo; request metadata echoed as initial ("echo-" + key) and trailing
                ("trailer-" + key) metadata
  Status        request "CODE:text" -> status CODE with message text (bytes exact)
  Slow          request "MS" -> echo after MS milliseconds (cancellation is logged)
  ServerStream  request "N:SIZE" -> N messages of SIZE bytes (cancellation is logged)
  ClientStream  reads every message -> "COUNT:BYTES"
  Bidi          echoes each message (cancellation is logged)
  Log           one "CANCELLED <method> <code>" line per call the client cancelled

Importable (GrpcioTestServer) or run as a script: prints "listening on PORT", and "call METHOD"
when a call arrives; stops on stdin EOF or SIGTERM.
"""
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "swiftgrpc.test.Test"
OPTIONS = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]


def _identity(b):
    return b


class GrpcioTestServer:
    def __init__(self, address="127.0.0.1:0", announce=False, credentials=None):
        self.log = []
        self.calls = 0
        self._lock = threading.Lock()
        self.announce = announce
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=OPTIONS)
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary, _identity, _identity),
            "Status": grpc.unary_unary_rpc_method_handler(self.status, _identity, _identity),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow, _identity, _identity),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream, _identity, _identity),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream, _identity, _identity),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi, _identity, _identity),
            "Log": grpc.unary_unary_rpc_method_handler(self.get_log, _identity, _identity),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        if credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, credentials)
        self.target = f"127.0.0.1:{self.port}"
        self.server.start()

    def stop(self, grace=None):
        self.server.stop(grace).wait()

    def _arrived(self, name, context):
        with self._lock:
            self.calls += 1
        if self.announce:
            print(f"call {name}", flush=True)

    def _log_cancel(self, name):
        with self._lock:
            self.log.append(f"CANCELLED /{SERVICE}/{name}")

    def unary(self, request, context):
        self._arrived("Unary", context)
        md = [(k, v) for k, v in context.invocation_metadata() if not k.startswith(("grpc-", ":", "user-agent"))]
        context.send_initial_metadata([("echo-" + k, v) for k, v in md])
        context.set_trailing_metadata([("trailer-" + k, v) for k, v in md])
        return request

    def status(self, request, context):
        self._arrived("Status", context)
        code_text, _, message = request.partition(b":")
        code = next(c for c in grpc.StatusCode if c.value[0] == int(code_text))
        context.abort(code, message.decode("utf-8"))

    def slow(self, request, context):
        self._arrived("Slow", context)
        ms = int(request or b"50")
        deadline = time.monotonic() + ms / 1000
        while time.monotonic() < deadline:
            if not context.is_active():
                self._log_cancel("Slow")
                return b""
            time.sleep(0.01)
        return request

    def _log_if_cancelled(self, name, context):
        """Logs a cancellation when the RPC terminates cancelled: in a termination callback,
        grpcio's is_active() is False exactly then."""
        context.add_callback(lambda: None if context.is_active() else self._log_cancel(name))

    def server_stream(self, request, context):
        self._arrived("ServerStream", context)
        self._log_if_cancelled("ServerStream", context)
        n, _, size = request.partition(b":")
        size = int(size or b"1")
        for i in range(int(n)):
            yield bytes([97 + i % 26]) * size

    def client_stream(self, request_iterator, context):
        self._arrived("ClientStream", context)
        count = total = 0
        for m in request_iterator:
            count += 1
            total += len(m)
        return f"{count}:{total}".encode()

    def bidi(self, request_iterator, context):
        self._arrived("Bidi", context)
        self._log_if_cancelled("Bidi", context)
        for m in request_iterator:
            yield m

    def get_log(self, request, context):
        with self._lock:
            return "".join(line + "\n" for line in self.log).encode()


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    s = GrpcioTestServer(address, announce=True)
    print(f"listening on {s.port}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    s.stop(0)


if __name__ == "__main__":
    main()
