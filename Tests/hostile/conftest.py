"""Fixtures of the hostile-peer suite: the C host (Tests/c/interop_server.c) and the Python
host (py_server.py, on the binding) as real processes on real sockets, their trace lines
(stderr, read by a thread as they come), their memory and CPU (/proc), and a well-behaved
grpcio client measuring how long the server takes to answer it while the attack goes on."""
import json
import os
import subprocess
import sys
import threading
import time

import grpc
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SWIFTGRPC_BUILD_DIR", os.path.join(ROOT, "build"))
ENV = dict(os.environ, SWIFT_BACKTRACE="enable=no",
           PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
TEST = "/swiftgrpc.test.Test/"
MIB = 1 << 20


class Host:
    """A server process. `trace` lines (stderr) are collected as they arrive."""

    def __init__(self, kind, argv, env=None):
        self.kind = kind
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env or ENV)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on"):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.split()[2])
        self.target = f"127.0.0.1:{self.port}"
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, needle, timeout=10, start=0):
        """The first trace line from index `start` containing `needle`, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if needle in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(remaining)

    def _status_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field}")

    def rss(self):
        """Resident memory in bytes."""
        return self._status_kib("VmRSS")

    def peak_rss(self):
        """The most resident memory the process ever had (VmHWM), in bytes."""
        return self._status_kib("VmHWM")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def c_host(*args, prefix=()):
    path = os.path.join(BUILD, "interop_server")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build with cmake first")
    return Host("c", [*prefix, path, "--loops", "1", "--trace", *args])


def py_host(*options):
    argv = [sys.executable, os.path.join(HERE, "py_server.py")]
    for o in options:
        argv += ["--option", o]
    return Host("python", argv, env=dict(ENV, SWIFTGRPC_LOOP_THREADS="1"))


def rb_host():
    return Host("ruby", ["ruby", os.path.join(HERE, "rb_server.rb")],
                env=dict(ENV, SWIFTGRPC_LOOP_THREADS="1",
                         SWIFTGRPC_LIBRARY=os.path.join(BUILD, "libswiftgrpc.so")))


@pytest.fixture(params=["c", "python", "ruby"])
def host(request):
    h = {"c": c_host, "python": py_host, "ruby": rb_host}[request.param]()
    yield h
    h.stop()


class GoodClient:
    """A polite grpcio client that keeps calling Unary on the host from its own thread and
    records every latency (None for a failed call)."""

    def __init__(self, target):
        self.channel = grpc.insecure_channel(target)
        self.call = self.channel.unary_unary(TEST + "Unary")
        assert self.call(b"warm-up", timeout=10) == b"warm-up"
        self.latencies = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                ok = self.call(b"ping", timeout=5) == b"ping"
            except grpc.RpcError:
                ok = False
            self.latencies.append(time.monotonic() - t0 if ok else None)
            self.stopping.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.channel.close()

    @property
    def worst(self):
        return max((x for x in self.latencies if x is not None), default=None)

    def assert_served(self, within):
        assert self.latencies, "the good client made no call"
        failed = self.latencies.count(None)
        worst = max((x for x in self.latencies if x is not None), default=None)
        assert failed == 0, f"{failed} of {len(self.latencies)} good calls failed"
        assert worst is not None and worst < within, \
            f"a good call took {worst:.3f} s (limit {within} s) over {len(self.latencies)} calls"


def unary(target, payload=b"x", timeout=10):
    with grpc.insecure_channel(target) as ch:
        return ch.unary_unary(TEST + "Unary")(payload, timeout=timeout)


def stats(target):
    with grpc.insecure_channel(target) as ch:
        return int(ch.unary_unary(TEST + "Stats")(b"", timeout=10).decode().split("=")[1])


FIGURES = {}


@pytest.fixture
def record(request):
    """record(name, value): a measured figure, written to $BUILD/hostile-figures.json and
    printed at the end of the run (the bounds the suite proved, in numbers)."""
    def put(name, value):
        FIGURES[f"{request.node.name}: {name}"] = value
    return put


def pytest_sessionfinish(session, exitstatus):
    if not FIGURES:
        return
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, "hostile-figures.json"), "w") as f:
        json.dump(FIGURES, f, indent=1, sort_keys=True)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_sep("-", "measured")
        for k, v in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{k}: {v}")
