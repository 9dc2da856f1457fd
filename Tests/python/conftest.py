"""Fixtures: the generated test service (grpcio-tools, at session start), servers of both
implementations (grpcio and swiftgrpc) on real sockets, and channels of both."""
import os
import subprocess
import sys
import tempfile
from concurrent import futures

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The binding under test: the source tree's, or (SWIFTGRPC_TEST_INSTALLED=1) the one installed in
# this interpreter (Tests/python/check_interpreters.sh installs the wheel in each interpreter).
INSTALLED = os.environ.get("SWIFTGRPC_TEST_INSTALLED") == "1"
if not INSTALLED:
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("SWIFT_BACKTRACE", "enable=no")

GEN = tempfile.mkdtemp(prefix="swiftgrpc-pytest-gen-")
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}/protos",
                f"-I{ROOT}/examples/python/protos",
                f"--python_out={GEN}", f"--grpc_python_out={GEN}", "svc.proto", "grpc_testing.proto",
                "helloworld.proto", "route_guide.proto"],
               check=True)
sys.path.insert(0, GEN)

import grpc  # noqa: E402
import swiftgrpc  # noqa: E402
# Where subprocesses find the same binding.
BINDINGS = os.path.dirname(os.path.dirname(os.path.abspath(swiftgrpc.__file__)))
import svc_pb2_grpc  # noqa: E402
from servicer import Servicer  # noqa: E402

IMPLS = ["grpcio", "swiftgrpc"]


def make_server(impl, servicer=None, max_workers=16):
    mod = grpc if impl == "grpcio" else swiftgrpc
    server = mod.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    svc_pb2_grpc.add_SvcServicer_to_server(servicer or Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def make_channel(impl, target, options=None):
    mod = grpc if impl == "grpcio" else swiftgrpc
    return mod.insecure_channel(target, options=options)


@pytest.fixture(params=IMPLS)
def server_impl(request):
    return request.param


@pytest.fixture(params=IMPLS)
def client_impl(request):
    return request.param


@pytest.fixture
def target(server_impl):
    server, target = make_server(server_impl)
    yield target
    server.stop(None).wait(10)


@pytest.fixture
def stub(client_impl, target):
    ch = make_channel(client_impl, target)
    yield svc_pb2_grpc.SvcStub(ch)
    ch.close()


@pytest.fixture
def swift_target():
    server, target = make_server("swiftgrpc")
    yield target
    server.stop(None).wait(10)
