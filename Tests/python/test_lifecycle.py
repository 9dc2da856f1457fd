"""Exit and garbage collection: the interpreter exiting while serving and calling under load,
servers and channels dropped with calls in flight. Each scenario runs in its own interpreter so
that a crash or hang shows as an exit code or a timeout."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import BINDINGS


PRELUDE = textwrap.dedent(f"""
    import sys, threading, time, gc
    sys.path.insert(0, {BINDINGS!r})
    import swiftgrpc, grpc
    def echo(req, ctx):
        return req
    def slow(req, ctx):
        time.sleep(0.05)
        return req
    def make_server():
        s = swiftgrpc.server(max_workers=8)
        s.add_generic_rpc_handlers([swiftgrpc.method_handlers_generic_handler("l.S", {{
            "Echo": swiftgrpc.unary_unary_rpc_method_handler(echo),
            "Slow": swiftgrpc.unary_unary_rpc_method_handler(slow),
            "Stream": swiftgrpc.unary_stream_rpc_method_handler(lambda r, c: (r for _ in range(10**6))),
        }})])
        port = s.add_insecure_port("127.0.0.1:0")
        s.start()
        return s, f"127.0.0.1:{{port}}"
    def hammer(mod, target, n_threads, stop):
        def loop():
            ch = mod.insecure_channel(target)
            while not stop.is_set():
                try:
                    ch.unary_unary("/l.S/Echo")(b"x" * 100, timeout=5)
                except grpc.RpcError:
                    pass
        ts = [threading.Thread(target=loop, daemon=True) for _ in range(n_threads)]
        for t in ts:
            t.start()
        return ts
""")


def run_script(body, timeout=60):
    env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
    p = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], env=env,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("client", ["swiftgrpc", "grpc"])
def test_exit_while_serving_under_load(client):
    code, out, err = run_script(f"""
        s, target = make_server()
        stop = threading.Event()
        hammer({client}, target, 8, stop)
        time.sleep(0.5)
        print("exiting under load", flush=True)
        # no stop(), no join: the interpreter exits with the server busy
    """)
    assert code == 0, err
    assert "exiting under load" in out
    assert "Fatal" not in err and "Segmentation" not in err


def test_exit_with_streams_and_slow_calls_in_flight():
    code, out, err = run_script("""
        s, target = make_server()
        ch = swiftgrpc.insecure_channel(target)
        its = [ch.unary_stream("/l.S/Stream")(b"y" * 1000) for _ in range(4)]
        for it in its:
            next(it)
        fs = [ch.unary_unary("/l.S/Slow").future(b"z") for _ in range(50)]
        print("exiting", flush=True)
        sys.exit(3)
    """)
    assert code == 3, err
    assert "exiting" in out


def test_server_garbage_collected_with_calls_in_flight():
    code, out, err = run_script("""
        s, target = make_server()
        ch = swiftgrpc.insecure_channel(target)
        fs = [ch.unary_unary("/l.S/Slow").future(b"z") for _ in range(20)]
        it = ch.unary_stream("/l.S/Stream")(b"y")
        next(it)
        del s
        gc.collect()
        outcomes = set()
        for f in fs:
            try:
                f.result(timeout=10)
                outcomes.add("OK")
            except grpc.RpcError as e:
                outcomes.add(e.code().name)
        try:
            for _ in it:
                pass
            outcomes.add("stream-ended-ok")
        except grpc.RpcError as e:
            outcomes.add("stream-" + e.code().name)
        print(sorted(outcomes))
        # the port is closed now
        try:
            ch.unary_unary("/l.S/Echo")(b"", timeout=2)
            print("still served")
        except grpc.RpcError as e:
            print("after gc:", e.code().name)
    """)
    assert code == 0, err
    assert "stream-UNAVAILABLE" in out or "stream-CANCELLED" in out, out
    assert "after gc: UNAVAILABLE" in out or "after gc: DEADLINE_EXCEEDED" in out, out


def test_channel_garbage_collected_with_calls_in_flight():
    code, out, err = run_script("""
        s, target = make_server()
        for round in range(20):
            ch = swiftgrpc.insecure_channel(target)
            it = ch.unary_stream("/l.S/Stream")(b"y")
            next(it)
            f = ch.unary_unary("/l.S/Slow").future(b"z")
            del ch, it, f
            gc.collect()
        ch = swiftgrpc.insecure_channel(target)
        print(ch.unary_unary("/l.S/Echo")(b"alive"))
        s.stop(1).wait()
    """)
    assert code == 0, err
    assert "b'alive'" in out


def test_library_discovery_errors_are_clear():
    env = dict(os.environ, SWIFTGRPC_LIBRARY="/nonexistent/libswiftgrpc.so")
    p = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {BINDINGS!r}); import swiftgrpc"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "LibraryNotFound" in p.stderr and "/nonexistent/libswiftgrpc.so" in p.stderr


def test_exit_right_after_a_cancel_never_crashes():
    """An interpreter that cancels a call on a "dns" target (name resolution on a library
    thread) and exits at once: the library's threads end with the runtime, before the process
    tears down (a detached resolver thread used to crash here)."""
    server = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent("""
        s, target = make_server()
        print(target.split(":")[1], flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, SWIFT_BACKTRACE="enable=no"))
    port = server.stdout.readline().strip()
    try:
        for i in range(20):
            code, out, err = run_script(f"""
                ch = swiftgrpc.insecure_channel("dns:///localhost:{port}")
                if {i} % 2:
                    assert ch.unary_unary("/l.S/Echo")(b"x", timeout=10) == b"x"
                it = ch.unary_stream("/l.S/Stream")(b"y", timeout=10)
                it.cancel()
                print("exiting")
            """, timeout=30)
            assert code == 0 and "exiting" in out, (i, code, err[-2000:])
    finally:
        server.stdin.close()
        server.wait(timeout=20)
