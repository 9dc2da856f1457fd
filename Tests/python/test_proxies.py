"""swiftgrpc behind real gRPC reverse proxies, started here on loopback: nghttpx (Debian
nghttp2-proxy) and HAProxy, HTTP/2 on both sides. All four kinds through each, from swiftgrpc's
and grpcio's clients; a proxy drained (nghttpx's graceful stop, GOAWAY to the clients) and
replaced while calls keep coming loses none; and a round-robin client over three servers, one of
them drained (GOAWAY) and replaced, fails no call."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent import futures

import grpc
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
from servicer import Named

Msg = svc_pb2.Msg
BIG = b"through the proxy " * 300


def four_kinds(stub):
    assert stub.Unary(Msg(text="echo", data=BIG), timeout=10).data == BIG
    assert [m.data for m in stub.ServerStream(Msg(n=3, data=BIG), timeout=10)] == [BIG] * 3
    assert stub.ClientStream(iter([Msg(text="a", data=BIG), Msg(text="b")]), timeout=10).text == "a,b"
    assert [m.text for m in stub.Bidi(iter([Msg(text="x"), Msg(text="y")]), timeout=10)] == ["X", "Y"]


def swift_server(port=0, name="server"):
    server = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=16))
    svc_pb2_grpc.add_SvcServicer_to_server(Named(name), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)  # the proxy is starting: it has no event to wait on
    raise RuntimeError("the proxy did not start listening")


class Nghttpx:
    def __init__(self, backends, port=None):
        if not shutil.which("nghttpx"):
            pytest.skip("nghttpx (Debian nghttp2-proxy) is not installed")
        self.port = port or free_port()
        args = ["nghttpx", f"--frontend=127.0.0.1,{self.port};no-tls", "--workers=1", "--no-ocsp",
                "--conf=/dev/null", "--errorlog-file=/dev/stderr", "--accesslog-file=/dev/null"]
        args += [f"--backend=127.0.0.1,{p};;proto=h2" for p in backends]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_listening(self.port, self.proc)

    def drain(self):
        """nghttpx's graceful stop (SIGQUIT): GOAWAY to its clients, calls in flight finish."""
        self.proc.send_signal(signal.SIGQUIT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class HAProxy:
    def __init__(self, backends):
        if not shutil.which("haproxy"):
            pytest.skip("haproxy is not installed")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="swiftgrpc-haproxy-")
        cfg = os.path.join(self.dir, "haproxy.cfg")
        servers = "\n".join(f"  server s{i} 127.0.0.1:{p} proto h2" for i, p in enumerate(backends))
        with open(cfg, "w") as f:
            f.write(f"""global
  maxconn 1000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend grpc
  bind 127.0.0.1:{self.port} proto h2
  default_backend servers
backend servers
  balance roundrobin
{servers}
""")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        wait_listening(self.port, self.proc)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.parametrize("proxy", [Nghttpx, HAProxy], ids=["nghttpx", "haproxy"])
@pytest.mark.parametrize("client", ["swiftgrpc", "grpcio"])
def test_all_four_kinds_through_the_proxy(proxy, client):
    server, port = swift_server()
    p = proxy([port])
    try:
        mod = swiftgrpc if client == "swiftgrpc" else grpc
        with mod.insecure_channel(f"127.0.0.1:{p.port}") as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            four_kinds(stub)
            # Statuses and trailers cross it too.
            with pytest.raises(grpc.RpcError) as err:
                stub.Unary(Msg(text="status:NOT_FOUND:gone"), timeout=10)
            assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "gone")
    finally:
        p.close()
        server.stop(None).wait(10)


def test_haproxy_spreads_calls_over_three_swiftgrpc_servers():
    servers = [swift_server(name=f"s{i}") for i in range(3)]
    p = HAProxy([port for _, port in servers])
    try:
        with swiftgrpc.insecure_channel(f"127.0.0.1:{p.port}") as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            # One client connection; HAProxy balances its calls one by one over the servers.
            names = [stub.Unary(Msg(text="whoami"), timeout=10).text for _ in range(30)]
        assert set(names) == {"s0", "s1", "s2"}
    finally:
        p.close()
        for s, _ in servers:
            s.stop(None).wait(10)


def test_a_drained_and_replaced_proxy_loses_no_call():
    server, port = swift_server()
    first = Nghttpx([port])
    replacement = None
    failures, done = [], threading.Event()
    try:
        with swiftgrpc.insecure_channel(f"127.0.0.1:{first.port}",
                                        options=[("grpc.initial_reconnect_backoff_ms", 50),
                                                 ("grpc.max_reconnect_backoff_ms", 200)]) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert stub.Unary(Msg(text="echo", data=b"0"), timeout=10).data == b"0"
            calls = []

            def caller():
                i = 0
                while not done.is_set():
                    i += 1
                    try:
                        r = stub.Unary(Msg(text="echo", data=str(i).encode()), timeout=10, wait_for_ready=True)
                        calls.append(r.data == str(i).encode())
                    except grpc.RpcError as e:
                        failures.append((e.code(), e.details()))

            threads = [threading.Thread(target=caller) for _ in range(4)]
            for t in threads:
                t.start()
            while len(calls) < 50:
                time.sleep(0.01)  # let calls flow before the drain
            first.drain()
            assert first.proc.wait(timeout=20) == 0  # it drained: every call it had finished
            replacement = Nghttpx([port], port=first.port)
            target = len(calls) + 50
            while len(calls) < target and not failures:
                time.sleep(0.01)  # calls flow again, through the replacement
            done.set()
            for t in threads:
                t.join(20)
        assert failures == [] and all(calls) and len(calls) > 100
    finally:
        done.set()
        first.close()
        if replacement:
            replacement.close()
        server.stop(None).wait(10)


def test_round_robin_over_three_servers_with_one_drained_and_replaced_fails_no_call():
    servers = [swift_server(name=f"s{i}") for i in range(3)]
    ports = [p for _, p in servers]
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    failures, ok, done = [], [], threading.Event()
    try:
        with swiftgrpc.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin"),
                                                         ("grpc.initial_reconnect_backoff_ms", 50)]) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert ch.wait_for_ready(10)

            def caller():
                while not done.is_set():
                    try:
                        ok.append(stub.Unary(Msg(text="echo", data=b"r"), timeout=10).data == b"r")
                    except grpc.RpcError as e:
                        failures.append((e.code(), e.details()))

            threads = [threading.Thread(target=caller) for _ in range(4)]
            for t in threads:
                t.start()
            while len(ok) < 100:
                time.sleep(0.01)
            old, _ = servers[1]
            old.stop(2).wait(10)  # GOAWAY, its calls finish, then it is gone
            servers[1] = swift_server(ports[1], name="s1 again")  # replaced on the same address
            mark = len(ok)
            while len(ok) < mark + 200 and not failures:
                time.sleep(0.01)
            # The channel reconnected to the replacement: round robin reaches it again.
            deadline = time.monotonic() + 10
            names = set()
            while "s1 again" not in names and time.monotonic() < deadline:
                names.add(stub.Unary(Msg(text="whoami"), timeout=10).text)
            done.set()
            for t in threads:
                t.join(20)
        assert failures == [] and all(ok)
        assert "s1 again" in names
    finally:
        done.set()
        for s, _ in servers:
            s.stop(None).wait(10)
