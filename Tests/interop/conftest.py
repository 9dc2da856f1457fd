"""Fixtures: start the C interop server (Tests/c/interop_server.c, built by CMake) as a real
process on a real socket, and give tests a grpcio channel to it."""
import os
import signal
import subprocess
import sys

import grpc
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SWIFTGRPC_BUILD_DIR", os.path.join(ROOT, "build"))
ENV = dict(os.environ, SWIFT_BACKTRACE="enable=no")


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build with cmake first (see README)")
    return path


class ServerProcess:
    def __init__(self, *args, name="interop_server"):
        self.proc = subprocess.Popen(
            [binary(name), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=ENV)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on"):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.split()[2])
        self.plain_port = int(line.split()[3]) if len(line.split()) > 3 else None
        self.target = f"127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the server; returns (exit code, remaining stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture(params=["push", "pull", "batch"])
def server(request):
    s = ServerProcess(*({"pull": ["--pull"], "batch": ["--batch"]}.get(request.param, [])))
    yield s
    code, out, err = s.stop()
    assert code == 0, f"server exited {code}: {err}"
    assert "callbacks_after_destroy=0" in out, out


@pytest.fixture
def push_server():
    s = ServerProcess()
    yield s
    s.stop()


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def method(channel, name, kind="unary_unary"):
    return getattr(channel, kind)(f"/swiftgrpc.test.Test/{name}")
