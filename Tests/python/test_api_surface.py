"""Every public name of grpcio's grpc, grpc.aio and grpc.experimental modules (grpcio 1.85)
exists in swiftgrpc (issue 18, item 1); what swiftgrpc lacks raises NotImplementedError naming
the feature; swiftgrpc's objects pass grpcio-style isinstance checks."""
import pytest

import grpc
import swiftgrpc
import swiftgrpc.aio

GRPC = """AuthMetadataContext AuthMetadataPlugin AuthMetadataPluginCallback Call CallCredentials
Channel ChannelConnectivity ChannelCredentials ClientCallDetails Compression Future
FutureCancelledError FutureTimeoutError GenericRpcHandler HandlerCallDetails LocalConnectionType
RpcContext RpcError RpcMethodHandler Server ServerCertificateConfiguration ServerCredentials
ServerInterceptor ServiceRpcHandler ServicerContext Status StatusCode StreamStreamClientInterceptor
StreamStreamMultiCallable StreamUnaryClientInterceptor StreamUnaryMultiCallable
UnaryStreamClientInterceptor UnaryStreamMultiCallable UnaryUnaryClientInterceptor
UnaryUnaryMultiCallable access_token_call_credentials alts_channel_credentials
alts_server_credentials channel_ready_future composite_call_credentials
composite_channel_credentials compute_engine_channel_credentials dynamic_ssl_server_credentials
insecure_channel insecure_server_credentials intercept_channel local_channel_credentials
local_server_credentials metadata_call_credentials method_handlers_generic_handler protos
protos_and_services secure_channel server services ssl_channel_credentials
ssl_server_certificate_configuration ssl_server_credentials stream_stream_rpc_method_handler
stream_unary_rpc_method_handler unary_stream_rpc_method_handler unary_unary_rpc_method_handler
xds_channel_credentials xds_server_credentials aio experimental""".split()

AIO = """AbortError AioRpcError BaseError Call Channel ChannelArgumentType ClientCallDetails
ClientInterceptor EOF InterceptedUnaryUnaryCall InternalError Metadata RpcContext Server
ServerInterceptor ServicerContext StreamStreamCall StreamStreamClientInterceptor
StreamStreamMultiCallable StreamUnaryCall StreamUnaryClientInterceptor StreamUnaryMultiCallable
UnaryStreamCall UnaryStreamClientInterceptor UnaryStreamMultiCallable UnaryUnaryCall
UnaryUnaryClientInterceptor UnaryUnaryMultiCallable UsageError init_grpc_aio insecure_channel
secure_channel server shutdown_grpc_aio""".split()

EXPERIMENTAL = """ChannelOptions ExperimentalApiWarning UsageError experimental_api
insecure_channel_credentials ssl_channel_credentials_with_custom_signer stream_stream
stream_unary unary_stream unary_unary wrap_server_method_handler""".split()


@pytest.mark.parametrize("module,names", [(swiftgrpc, GRPC), (swiftgrpc.aio, AIO),
                                          (swiftgrpc.experimental, EXPERIMENTAL)])
def test_every_public_name_of_grpcio_exists(module, names):
    assert [n for n in names if not hasattr(module, n)] == []


@pytest.mark.parametrize("fn,feature", [
    (lambda: swiftgrpc.xds_channel_credentials(), "xDS"),
    (lambda: swiftgrpc.xds_server_credentials(None), "xDS"),
    (lambda: swiftgrpc.insecure_server_credentials(), "insecure_server_credentials"),
    (lambda: swiftgrpc.alts_channel_credentials(), "ALTS"),
    (lambda: swiftgrpc.local_channel_credentials(), "local_channel_credentials"),
    (lambda: swiftgrpc.experimental.ssl_channel_credentials_with_custom_signer(), "custom"),
])
def test_missing_features_are_named(fn, feature):
    with pytest.raises(NotImplementedError, match=feature):
        fn()


def test_isinstance_checks_as_with_grpcio():
    with swiftgrpc.insecure_channel("127.0.0.1:1") as ch:
        assert isinstance(ch.unary_unary("/a.B/C"), swiftgrpc.UnaryUnaryMultiCallable)
        assert isinstance(ch.unary_stream("/a.B/C"), swiftgrpc.UnaryStreamMultiCallable)
        assert isinstance(ch.stream_unary("/a.B/C"), swiftgrpc.StreamUnaryMultiCallable)
        assert isinstance(ch.stream_stream("/a.B/C"), swiftgrpc.StreamStreamMultiCallable)
        f = ch.unary_unary("/a.B/C").future(b"", timeout=0.01)
        assert isinstance(f, swiftgrpc.Future) and isinstance(f, swiftgrpc.Call)
        with pytest.raises(grpc.RpcError):
            f.result(timeout=10)
        e = f.exception()
        assert isinstance(e, grpc.RpcError) and isinstance(e, swiftgrpc.Call)
    h = swiftgrpc.method_handlers_generic_handler("a.B", {})
    assert isinstance(h, swiftgrpc.ServiceRpcHandler) and h.service_name() == "a.B"
    assert issubclass(swiftgrpc.aio.AbortError, swiftgrpc.aio.BaseError)
    assert swiftgrpc.LocalConnectionType.UDS.value == grpc.LocalConnectionType.UDS.value
