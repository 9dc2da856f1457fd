"""Drives draining_server.py as an orchestrator would (run by run.sh): watches its health with
grpcio-health-checking's stub, starts a slow call, sends SIGTERM, and checks that the watch says
NOT_SERVING, the slow call still finishes, and the server exits 0."""
import signal
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import protos  # noqa: F401
import helloworld_pb2
import helloworld_pb2_grpc

server = subprocess.Popen([sys.executable, "draining_server.py", "--port", "0", "--grace", "10"],
                          stdout=subprocess.PIPE, text=True)
port = int(server.stdout.readline().split()[-1])
with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
    watch = health_pb2_grpc.HealthStub(ch).Watch(
        health_pb2.HealthCheckRequest(service="helloworld.Greeter"), timeout=30)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    slow = helloworld_pb2_grpc.GreeterStub(ch).SayHello.future(
        helloworld_pb2.HelloRequest(name="slow reader"), timeout=30)
    server.send_signal(signal.SIGTERM)
    assert server.stdout.readline().strip() == "draining"
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    print("health: NOT_SERVING")
    print("in flight:", slow.result().message)
assert server.stdout.readline().strip() == "drained"
assert server.wait(timeout=30) == 0
print("server exited 0")
