"""gRPC's metadata, timeout and errors (rich status) examples, with swiftgrpc on either side."""
from scenario import load, pairs

SERVER = '''
import time
from concurrent import futures
import grpc
import helloworld_pb2
import helloworld_pb2_grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        if request.name == "metadata":  # metadata example
            for key, value in context.invocation_metadata():
                if key == "client-key":
                    context.send_initial_metadata((("server-initial", value),))
            context.set_trailing_metadata((("checksum-bin", b"I agree"), ("retry", "false")))
            return helloworld_pb2.HelloReply(message="metadata seen")
        if request.name == "slow":  # timeout example
            time.sleep(2)
            return helloworld_pb2.HelloReply(message="too late: %s" % context.is_active())
        if request.name == "error":  # error_details example
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.QuotaFailure(violations=[
                error_details_pb2.QuotaFailure.Violation(subject="name: error", description="limit")]))
            context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                code=code_pb2.RESOURCE_EXHAUSTED, message="Request limit exceeded.", details=[detail])))
        return helloworld_pb2.HelloReply(message="Hello, %s!" % request.name)


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
'''

CLIENT = '''
import grpc
import helloworld_pb2
import helloworld_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def run(port):
    out = {}
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        response, call = stub.SayHello.with_call(helloworld_pb2.HelloRequest(name="metadata"),
                                                 metadata=(("client-key", "client-value"),))
        out["metadata"] = (response.message, tuple(call.initial_metadata()), tuple(call.trailing_metadata()))
        try:
            stub.SayHello(helloworld_pb2.HelloRequest(name="slow"), timeout=0.3)
        except grpc.RpcError as e:
            out["timeout"] = (e.code(), e.details())
        try:
            stub.SayHello(helloworld_pb2.HelloRequest(name="error"))
        except grpc.RpcError as e:
            status = rpc_status.from_call(e)
            info = error_details_pb2.QuotaFailure()
            status.details[0].Unpack(info)
            out["error"] = (e.code(), status.message, info.violations[0].subject)
    return out
'''


@pairs
def test_metadata_timeout_errors(server_impl, client_impl):
    import grpc
    server, port = load(SERVER, server_impl, "md_server").serve()
    try:
        out = load(CLIENT, client_impl, "md_client").run(port)
    finally:
        server.stop(None)
    message, initial, trailing = out["metadata"]
    assert message == "metadata seen"
    assert [tuple(m) for m in initial] == [("server-initial", "client-value")]
    assert [tuple(m) for m in trailing] == [("checksum-bin", b"I agree"), ("retry", "false")]
    assert out["timeout"] == (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") or \
        out["timeout"][0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert out["error"] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "Request limit exceeded.", "name: error")
