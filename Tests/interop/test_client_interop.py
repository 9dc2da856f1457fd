"""The C client (Tests/c/client_driver.c on libswiftgrpc.so) against real servers: a grpcio
server (Tests/interop/grpcio_test_server.py) and our own C server (interop_server), with events
delivered both ways (push callback and pull queue)."""
import os
import signal
import socket
import subprocess
import sys

import pytest

from conftest import ENV, HERE, ServerProcess, binary
from grpcio_test_server import GrpcioTestServer

METHOD = "/swiftgrpc.test.Test/"
EXOTIC = " héllo\r\nwörld ✓ 100% \x7f\t "


def hexs(b):
    return b.hex() if b else "-"


class Result:
    def __init__(self, out, code):
        self.lines = out.splitlines()
        self.code = code

    def first(self, prefix):
        return next((l for l in self.lines if l.startswith(prefix)), None)

    def all(self, prefix):
        return [l for l in self.lines if l.startswith(prefix)]

    @property
    def status(self):
        parts = self.first("STATUS ").split()
        return int(parts[1]), bytes.fromhex(parts[2]) if parts[2] != "-" else b""

    def md(self, label):
        return {l.split()[1]: bytes.fromhex(l.split()[2]) if l.split()[2] != "-" else b"" for l in self.all(label + " ")}


def drive(target, *args, mode="push", timeout=60):
    cmd = [binary("client_driver"), "--target", target]
    if mode == "pull":
        cmd.append("--pull")
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=ENV, timeout=timeout)
    assert proc.returncode == 0, f"client_driver failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}"
    return Result(proc.stdout, proc.returncode)


class Peer:
    """A server under test: grpcio in this process, or our C server as a process."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "grpcio":
            self.server = GrpcioTestServer()
            self.target = self.server.target
        else:
            self.server = ServerProcess()
            self.target = self.server.target

    def log(self):
        if self.kind == "grpcio":
            return "\n".join(self.server.log)
        return drive(self.target, "--method", METHOD + "Log", "call").first("RESPONSE ") or ""

    def log_text(self):
        if self.kind == "grpcio":
            return self.log()
        line = self.log()
        return bytes.fromhex(line.split()[2]).decode() if line and line.split()[2] != "-" else ""

    def stop(self):
        if self.kind == "grpcio":
            self.server.stop(0)
        else:
            code, out, err = self.server.stop()
            assert code == 0, err


@pytest.fixture(params=["grpcio", "swiftgrpc"])
def peer(request):
    p = Peer(request.param)
    yield p
    p.stop()


@pytest.fixture(params=["push", "pull"])
def mode(request):
    return request.param


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- all four kinds, metadata ------------------------------------------------------------

def test_unary_metadata_both_ways(peer, mode):
    binary_value = bytes([0, 1, 2, 0xFE, 0xFF, 10, 13])
    r = drive(peer.target, "--method", METHOD + "Unary", "--req", "68656c6c6f",
              "--md", "x-text=" + b"hello world".hex(), "--md", "x-data-bin=" + binary_value.hex(),
              "call", mode=mode)
    assert r.status == (0, b"")
    assert r.first("RESPONSE ") == "RESPONSE 5 68656c6c6f"
    assert r.md("MD")["echo-x-text"] == b"hello world"
    assert r.md("MD")["echo-x-data-bin"] == binary_value
    assert r.md("TRAILER")["trailer-x-text"] == b"hello world"
    assert r.md("TRAILER")["trailer-x-data-bin"] == binary_value
    # The call is closed after its status: later operations are refused.
    assert "AFTER_STATUS_CANCEL -8" in r.lines


def test_server_streaming(peer, mode):
    r = drive(peer.target, "--method", METHOD + "ServerStream", "--kind", "server",
              "--req", b"5:3".hex(), "call", mode=mode)
    assert r.all("MESSAGE ") == [f"MESSAGE 3 {bytes([97 + i]) .hex() * 3}" for i in range(5)]
    assert r.lines.index("INITIAL_METADATA") < r.lines.index(r.all("MESSAGE ")[0])
    assert r.lines[r.lines.index(r.first("STATUS ")) - 1] == "END"
    assert r.status == (0, b"")


def test_client_streaming(peer, mode):
    r = drive(peer.target, "--method", METHOD + "ClientStream", "--kind", "client",
              "--req", "61", "--req", "6262", "--req", "636363", "call", mode=mode)
    assert r.all("SEND_DONE ") == ["SEND_DONE 0"] * 3
    assert r.status == (0, b"")
    assert r.first("RESPONSE ") == "RESPONSE 3 " + b"3:6".hex()


def test_server_streaming_with_reads_outstanding(peer, mode):
    # Eight reads kept asked (one more after each message): every message once, in order; each
    # read the library accepted gets one event, so the reads still outstanding at the end get
    # an END each before the STATUS, and those made after the end are refused (CLOSED).
    r = drive(peer.target, "--method", METHOD + "ServerStream", "--kind", "server", "--read-window", "8",
              "--req", b"200:3".hex(), "call", mode=mode)
    assert r.all("MESSAGE ") == [f"MESSAGE 3 {bytes([97 + i % 26]).hex() * 3}" for i in range(200)]
    ends, refused = r.lines.count("END"), r.lines.count("CLOSED read")
    assert ends >= 1 and ends + refused == 8, (ends, refused)
    assert r.lines[r.lines.index(r.first("STATUS ")) - 1] == "END"
    assert r.status == (0, b"")


def test_client_streaming_with_sends_outstanding(peer, mode):
    reqs = [bytes([97 + i % 26]) * (i + 1) for i in range(40)]
    args = []
    for q in reqs:
        args += ["--req", q.hex()]
    r = drive(peer.target, "--method", METHOD + "ClientStream", "--kind", "client", "--send-window", "8",
              *args, "call", mode=mode)
    assert r.all("SEND_DONE ") == ["SEND_DONE 0"] * 40
    assert r.status == (0, b"")
    assert r.first("RESPONSE ") == "RESPONSE %d %s" % (len(b"40:820"), b"40:820".hex())


def test_bidi_ping_pong(peer, mode):
    reqs = [b"ping%d" % i for i in range(4)]
    args = []
    for q in reqs:
        args += ["--req", q.hex()]
    r = drive(peer.target, "--method", METHOD + "Bidi", "--kind", "bidi", *args, "call", mode=mode)
    assert r.all("MESSAGE ") == [f"MESSAGE {len(q)} {q.hex()}" for q in reqs]
    # Ping-pong: each reply arrives before the next request is sent.
    sends = [i for i, l in enumerate(r.lines) if l.startswith("SEND_DONE")]
    msgs = [i for i, l in enumerate(r.lines) if l.startswith("MESSAGE")]
    assert all(msgs[k] < sends[k + 1] for k in range(len(reqs) - 1))
    assert r.status == (0, b"")


def test_empty_messages(peer):
    r = drive(peer.target, "--method", METHOD + "Unary", "call")
    assert r.status == (0, b"") and r.first("RESPONSE ") == "RESPONSE 0 -"


# ---- statuses ----------------------------------------------------------------------------

@pytest.mark.parametrize("code", range(1, 17))
def test_every_status_code_with_exotic_message(peer, code):
    r = drive(peer.target, "--method", METHOD + "Status", "--req", f"{code}:{EXOTIC}".encode().hex(), "call")
    assert r.status == (code, EXOTIC.encode())
    assert r.first("RESPONSE ") is None


def test_unknown_method_is_unimplemented(peer):
    r = drive(peer.target, "--method", METHOD + "Nope", "call")
    assert r.status[0] == 12


# ---- deadlines and cancellation ------------------------------------------------------------

def test_deadline_expires_on_sleeping_server(peer, mode):
    r = drive(peer.target, "--method", METHOD + "Slow", "--req", b"5000".hex(), "--deadline-ms", "300",
              "call", mode=mode)
    assert r.status[0] == 4
    assert 250 <= int(r.first("ELAPSED_MS ").split()[1]) < 3000
    # The server saw the call end early (it stops sleeping when cancelled).
    assert wait_for_log(peer, "CANCELLED /swiftgrpc.test.Test/Slow")


def wait_for_log(peer, line):
    import time
    for _ in range(100):
        if line in peer.log_text():
            return True
        time.sleep(0.05)
    return False


def test_cancel_mid_server_stream(peer, mode):
    # 100k messages of 100 bytes: far beyond the flow-control window, so the response is still
    # streaming when the client cancels after 3.
    r = drive(peer.target, "--method", METHOD + "ServerStream", "--kind", "server",
              "--req", b"100000:100".hex(), "--cancel-after", "3", "call", mode=mode)
    assert len(r.all("MESSAGE ")) == 3
    assert r.status[0] == 1
    if peer.kind == "grpcio":
        # (Our C server's host has queued every message and completed by then: nothing to tell.)
        assert wait_for_log(peer, "CANCELLED /swiftgrpc.test.Test/ServerStream")


def test_cancel_mid_bidi_stream(peer, mode):
    r = drive(peer.target, "--method", METHOD + "Bidi", "--kind", "bidi", "--req", "61", "--req", "62",
              "--cancel-after", "1", "call", mode=mode)
    assert r.all("MESSAGE ") == ["MESSAGE 1 61"]
    assert r.status[0] == 1
    assert wait_for_log(peer, "CANCELLED /swiftgrpc.test.Test/Bidi")


# ---- connection failures ---------------------------------------------------------------

def test_connection_refused_is_unavailable(mode):
    r = drive(f"127.0.0.1:{free_port()}", "call", mode=mode)
    code, message = r.status
    assert code == 14
    assert b"refused" in message.lower()


def test_server_killed_mid_call_is_unavailable(peer_process):
    proc, target = peer_process
    driver = subprocess.Popen(
        [binary("client_driver"), "--target", target, "--method", METHOD + "ServerStream",
         "--kind", "server", "--req", b"1000000:100".hex(), "call"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    for line in driver.stdout:
        if line.startswith("MESSAGE "):
            break  # the server is mid-stream
    proc.send_signal(signal.SIGKILL)
    out, err = driver.communicate(timeout=30)
    assert driver.returncode == 0, out[-2000:] + err
    status = next(l for l in out.splitlines() if l.startswith("STATUS "))
    assert status.split()[1] == "14", out + err


@pytest.fixture(params=["grpcio", "swiftgrpc"])
def peer_process(request):
    if request.param == "grpcio":
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "grpcio_test_server.py")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    else:
        proc = subprocess.Popen([binary("interop_server")], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=ENV)
    port = int(proc.stdout.readline().split()[2])
    yield proc, f"127.0.0.1:{port}"
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_keepalive_detects_a_frozen_server():
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "grpcio_test_server.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        port = int(proc.stdout.readline().split()[2])
        driver = subprocess.Popen(
            [binary("client_driver"), "--target", f"127.0.0.1:{port}", "--keepalive-ms", "300",
             "--method", METHOD + "Slow", "--req", b"60000".hex(), "call"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        assert proc.stdout.readline().strip() == "call Slow"
        proc.send_signal(signal.SIGSTOP)  # alive socket, dead peer: only a PING can tell
        out, err = driver.communicate(timeout=30)
        status = next(l for l in out.splitlines() if l.startswith("STATUS "))
        assert status.split()[1] == "14", out + err
        assert b"keepalive" in bytes.fromhex(status.split()[2])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_wait_for_ready_succeeds_once_the_server_starts(mode):
    port = free_port()
    driver = subprocess.Popen(
        [binary("client_driver"), "--target", f"127.0.0.1:{port}", "--wfr", "--backoff-ms", "100",
         "--deadline-ms", "30000", "--method", METHOD + "Unary", "--req", "6869", "call"]
        + (["--pull"] if mode == "pull" else []),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert driver.stdout.readline().strip() == "STARTED"
    server = GrpcioTestServer(f"127.0.0.1:{port}")
    try:
        out, err = driver.communicate(timeout=30)
        assert "STATUS 0 -" in out, out + err
        assert "RESPONSE 2 6869" in out
    finally:
        server.stop(0)


# ---- sizes and volume --------------------------------------------------------------------

def test_4mib_messages_both_ways(peer, mode):
    size = 4 << 20
    r = drive(peer.target, "--max-recv", str(size), "--method", METHOD + "Unary", "--req-size", str(size),
              "call", mode=mode)
    assert r.status == (0, b"")
    sent = bytes((k * 31 + 7) & 0xFF for k in range(size))
    h = 2166136261
    for b in sent:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    assert r.first("RESPONSE ") == f"RESPONSE {size} fnv:{h:08x}"


def test_response_above_max_receive_size_is_resource_exhausted(peer):
    r = drive(peer.target, "--max-recv", "1000", "--method", METHOD + "Unary", "--req-size", "2000", "call")
    assert r.status[0] == 8


def test_1000_concurrent_unary_calls_on_one_channel(peer, mode):
    r = drive(peer.target, "--method", METHOD + "Unary", "concurrent", "1000", mode=mode)
    assert r.first("CONCURRENT ") == "CONCURRENT n=1000 ok=1000 matched=1000 failed=0"


# ---- load balancing and targets ----------------------------------------------------------

def test_round_robin_spreads_calls_over_three_servers():
    servers = [GrpcioTestServer() for _ in range(3)]
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
        # Sequential calls: every call is picked with all three connections up (a burst at
        # start-up all goes to whichever connects first, as in gRPC).
        r = drive(target, "--lb", "rr", "--method", METHOD + "Unary", "bench", "300", "1")
        assert "failed=0" in r.first("BENCH ")
        counts = [s.calls for s in servers]
        assert sum(counts) == 300 and min(counts) >= 50, counts
        # Pick-first on the same list sends everything to the first address.
        before = [s.calls for s in servers]
        drive(target, "--method", METHOD + "Unary", "concurrent", "100")
        assert [s.calls - b for s, b in zip(servers, before)] == [100, 0, 0]
    finally:
        for s in servers:
            s.stop(0)


def test_pick_first_skips_a_dead_address():
    server = GrpcioTestServer()
    try:
        target = f"ipv4:127.0.0.1:{free_port()},127.0.0.1:{server.port}"
        r = drive(target, "--method", METHOD + "Unary", "--req", "6869", "call")
        assert r.status == (0, b"")
    finally:
        server.stop(0)


@pytest.mark.parametrize("form", ["dns:///localhost:{port}", "localhost:{port}", "ipv4:127.0.0.1:{port}"])
def test_target_forms(form):
    server = GrpcioTestServer("127.0.0.1:0")
    try:
        r = drive(form.format(port=server.port), "--method", METHOD + "Unary", "--req", "6869", "call")
        assert r.status == (0, b"") and r.first("RESPONSE ") == "RESPONSE 2 6869"
    finally:
        server.stop(0)


def test_unix_socket_target(tmp_path):
    path = tmp_path / "grpc.sock"
    server = GrpcioTestServer(f"unix:{path}")
    try:
        r = drive(f"unix:{path}", "--method", METHOD + "Unary", "--req", "6869", "call")
        assert r.status == (0, b"")
    finally:
        server.stop(0)


def test_connectivity_states(peer):
    r = drive(peer.target, "states")
    # IDLE, then READY; CONNECTING is seen unless the loopback connection is up before the
    # wait starts (a wait reports the state it finds, as gRPC's does, not each one passed).
    assert r.all("STATE ") in (["STATE 0", "STATE 1", "STATE 2"], ["STATE 0", "STATE 2"])


# ---- blocking helpers ------------------------------------------------------------------

def test_blocking_unary_helper(peer):
    r = drive(peer.target, "--method", METHOD + "Unary", "--req", "6869", "--md", "x-k=" + b"v".hex(),
              "blocking-unary")
    assert r.status == (0, b"")
    assert r.first("RESPONSE ") == "RESPONSE 2 6869"
    assert r.md("MD")["echo-x-k"] == b"v" and r.md("TRAILER")["trailer-x-k"] == b"v"
    r = drive(peer.target, "--method", METHOD + "Status", "--req", f"7:{EXOTIC}".encode().hex(), "blocking-unary")
    assert r.status == (7, EXOTIC.encode())


def test_blocking_stream_helper(peer):
    r = drive(peer.target, "--method", METHOD + "ServerStream", "--req", b"4:2".hex(), "blocking-stream")
    assert len(r.all("MESSAGE ")) == 4 and r.status == (0, b"")
    r = drive(peer.target, "--method", METHOD + "ServerStream", "--req", b"100000:100".hex(),
              "--cancel-after", "2", "blocking-stream")
    assert len(r.all("MESSAGE ")) == 2 and r.status[0] == 1
