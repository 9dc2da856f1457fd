"""fork (issue 18, item 6): a process that used swiftgrpc forks; the child makes and uses its own
servers and channels (the parent's are refused there, and closed there: the child holds none of
the parent's sockets), the parent goes on unaffected; multiprocessing with fork and spawn; a
prefork server (several processes on one port with grpc.so_reuseport) called by grpcio."""
import multiprocessing
import os
import socket
import sys
import textwrap
import subprocess
from concurrent import futures

import grpc
import pytest

import swiftgrpc
from conftest import BINDINGS

ECHO = "/fork.S/Echo"


def _server(**kw):
    s = swiftgrpc.server(max_workers=4, **kw)
    s.add_generic_rpc_handlers([swiftgrpc.method_handlers_generic_handler("fork.S", {
        "Echo": swiftgrpc.unary_unary_rpc_method_handler(lambda req, ctx: req + b"@" + str(os.getpid()).encode()),
    })])
    return s


def _socket_inodes():
    """The inodes of this process's open sockets."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target)
    return out


def _child_checks(parent_target, parent_server, parent_channel, parent_sockets, w):
    """Runs in the forked child; writes one line of results to `w` and exits."""
    try:
        leaked = parent_sockets & _socket_inodes()
        try:
            parent_channel.unary_unary(ECHO)(b"x", timeout=5)
            refused = "no"
        except swiftgrpc.UsageError as e:
            refused = "yes" if "fork" in str(e) else f"other: {e}"
        try:
            parent_server.start()
            restarted = "yes"
        except swiftgrpc.UsageError:
            restarted = "no"
        s = _server()
        port = s.add_insecure_port("127.0.0.1:0")
        s.start()
        with swiftgrpc.insecure_channel(f"127.0.0.1:{port}") as ch:  # own server, own channel
            own = ch.unary_unary(ECHO)(b"own", timeout=10).decode()
        with swiftgrpc.insecure_channel(parent_target) as ch:  # a new channel to the parent's server
            to_parent = ch.unary_unary(ECHO)(b"up", timeout=10).decode()
        s.stop(None).wait(10)
        os.write(w, f"{len(leaked)} {refused} {restarted} {own} {to_parent}\n".encode())
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        os.write(w, f"error {type(e).__name__}: {e}\n".encode())
        os._exit(1)


def test_os_fork_child_uses_its_own_objects_and_the_parent_goes_on():
    others = _socket_inodes()
    server = _server()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    target = f"127.0.0.1:{port}"
    ch = swiftgrpc.insecure_channel(target)
    try:
        assert ch.unary_unary(ECHO)(b"before", timeout=10).endswith(str(os.getpid()).encode())
        mine = _socket_inodes() - others  # the listener and both ends of the connection
        assert len(mine) >= 3
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child_checks(target, server, ch, mine, w)
        os.close(w)
        with os.fdopen(r) as f:
            line = f.read().strip()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, line
        leaked, refused, restarted, own, to_parent = line.split()
        assert leaked == "0"  # the child closed its copies of the parent's sockets
        assert refused == "yes" and restarted == "no"
        assert own == f"own@{pid}"
        assert to_parent == f"up@{os.getpid()}"
        # the parent's channel and server are unaffected, also after the child exited
        assert ch.unary_unary(ECHO)(b"after", timeout=10) == f"after@{os.getpid()}".encode()
    finally:
        ch.close()
        server.stop(None).wait(10)


def _mp_worker(target, q):
    with swiftgrpc.insecure_channel(target) as ch:
        q.put(ch.unary_unary(ECHO)(b"mp", timeout=10).decode())


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_call_the_parents_server(method):
    server = _server()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    target = f"127.0.0.1:{port}"
    try:
        with swiftgrpc.insecure_channel(target) as ch:  # the parent used swiftgrpc before
            ch.unary_unary(ECHO)(b"warm", timeout=10)
            ctx = multiprocessing.get_context(method)
            q = ctx.Queue()
            procs = [ctx.Process(target=_mp_worker, args=(target, q)) for _ in range(2)]
            for p in procs:
                p.start()
            got = [q.get(timeout=60) for _ in procs]
            for p in procs:
                p.join(30)
                assert p.exitcode == 0
            assert got == [f"mp@{os.getpid()}"] * 2
            assert ch.unary_unary(ECHO)(b"still", timeout=10) == f"still@{os.getpid()}".encode()
    finally:
        server.stop(None).wait(10)


PREFORK_WORKER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {bindings!r})
    import swiftgrpc
    def serve(port):
        s = swiftgrpc.server(max_workers=2, options=[("grpc.so_reuseport", 1)])
        s.add_generic_rpc_handlers([swiftgrpc.method_handlers_generic_handler("fork.S", {{
            "Echo": swiftgrpc.unary_unary_rpc_method_handler(lambda r, c: str(os.getpid()).encode())}})])
        s.add_insecure_port(f"127.0.0.1:{{port}}")
        s.start()
        os.write(1, b"ready\\n")  # one write: the two workers' lines never interleave
        sys.stdin.read()
        s.stop(None).wait(10)
    port = int(sys.argv[1])
    warm = swiftgrpc.insecure_channel("127.0.0.1:1")  # the parent used swiftgrpc before forking
    warm.close()
    pids = []
    for _ in range(2):  # gRPC's multiprocessing example: fork the workers, each binds the port
        pid = os.fork()
        if pid == 0:
            serve(port)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
""")


def test_prefork_servers_share_a_port_with_so_reuseport(tmp_path):
    with socket.socket() as probe:  # a free port, kept reserved with SO_REUSEPORT as the example does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        script = tmp_path / "prefork.py"
        script.write_text(PREFORK_WORKER.format(bindings=BINDINGS))
        p = subprocess.Popen([sys.executable, str(script), str(port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            assert [p.stdout.readline().strip() for _ in range(2)] == ["ready", "ready"]
            seen = set()
            for _ in range(200):  # a new connection each time: the kernel spreads them
                with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                    seen.add(ch.unary_unary(ECHO)(b"", timeout=10))
                if len(seen) == 2:
                    break
            assert len(seen) == 2, seen  # both workers served
        finally:
            p.stdin.close()
            p.wait(60)
        assert p.returncode == 0
