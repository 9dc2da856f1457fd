"""The Python host the hostile-peer tests attack: a swiftgrpc.Server (the binding, sync) with
opaque-bytes methods of swiftgrpc.test.Test, like the C interop server's:

  Unary         echo
  ServerStream  request "N:SIZE" -> a generator yielding N messages of SIZE bytes
  Meta          the request's "x-name" metadata value, UTF-8 encoded (what the handler saw)
  Stats         "sent=N": messages ServerStream's generators have produced

Every cancellation seen by a handler (add_callback) and the end of each stream is printed to
stderr as "<now ms> CANCELLED <method>" / "<now ms> STREAM_END <n>". Prints "listening on PORT".
usage: py_server.py [--option NAME=VALUE]...   (grpcio-style server options)
"""
import sys
import threading
import time

import swiftgrpc

produced = 0
lock = threading.Lock()


def trace(line):
    sys.stderr.write(f"{time.monotonic_ns() // 1_000_000} {line}\n")
    sys.stderr.flush()


def unary(request, context):
    return request


def server_stream(request, context):
    global produced
    count, _, size = request.decode().partition(":")
    body = b"x" * int(size or 8)
    finished = []
    context.add_callback(lambda: None if finished else trace("CANCELLED ServerStream"))
    n = 0
    for _ in range(int(count)):
        with lock:
            produced += 1
        n += 1
        yield body
    finished.append(n)
    trace(f"STREAM_END {n}")


def meta(request, context):
    value = dict(context.invocation_metadata()).get("x-name", "")
    return value.encode("utf-8") if isinstance(value, str) else value


def stats(request, context):
    with lock:
        return f"sent={produced}".encode()


def main():
    options = []
    args = sys.argv[1:]
    while args:
        if args[0] == "--option" and len(args) > 1:
            name, _, value = args[1].partition("=")
            options.append((name, int(value)))
            args = args[2:]
        else:
            raise SystemExit(f"unknown argument {args[0]}")
    server = swiftgrpc.server(max_workers=16, options=options)
    server.add_generic_rpc_handlers([swiftgrpc.method_handlers_generic_handler("swiftgrpc.test.Test", {
        "Unary": swiftgrpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": swiftgrpc.unary_stream_rpc_method_handler(server_stream),
        "Meta": swiftgrpc.unary_unary_rpc_method_handler(meta),
        "Stats": swiftgrpc.unary_unary_rpc_method_handler(stats),
    })])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on {port}", flush=True)
    sys.stdin.read()  # until the test closes stdin
    server.stop(0).wait()


if __name__ == "__main__":
    main()
