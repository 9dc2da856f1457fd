"""grpcio's options on swiftgrpc: those it honours work (other tests show how), one grpcio
honours and swiftgrpc does not is refused by name, and those that do nothing where they are
given in grpcio either (a server's option on a channel, a program's own keys) are accepted."""
import pytest

import swiftgrpc
import swiftgrpc.aio


@pytest.mark.parametrize("make", [lambda o: swiftgrpc.insecure_channel("127.0.0.1:1", options=o),
                                  lambda o: swiftgrpc.aio.insecure_channel("127.0.0.1:1", options=o)],
                         ids=["sync", "aio"])
def test_channel_options(make):
    for refused in ([("grpc.service_config", "{}")], [("grpc.enable_http_proxy", 1)],
                    [("grpc.http2.max_pings_without_data", 2)], [("grpc.client_idle_timeout_ms", 1000)],
                    [("swiftgrpc.no_such_option", 1)]):
        with pytest.raises(ValueError, match=refused[0][0].replace(".", r"\.")):
            make(refused)
    # Accepted: a server's options (code shares one list), values that say what swiftgrpc
    # does, a program's own keys.
    ch = make([("grpc.max_concurrent_streams", 10), ("grpc.so_reuseport", 1), ("grpc.enable_retries", 0),
               ("grpc.enable_http_proxy", 0), ("grpc.http2.max_pings_without_data", 0),
               ("myapp.shard", "a"), ("grpc.max_receive_message_length", 1 << 20)])
    closing = ch.close()
    if closing is not None:  # the asyncio channel's close is a coroutine
        import asyncio
        asyncio.run(closing)


@pytest.mark.parametrize("make", [lambda o: swiftgrpc.server(options=o),
                                  lambda o: swiftgrpc.aio.server(options=o)], ids=["sync", "aio"])
def test_server_options(make):
    for refused in ([("grpc.resource_quota", 1)], [("grpc.max_allowed_incoming_connections", 5)],
                    [("grpc.enable_channelz", 1)]):
        with pytest.raises(ValueError, match=refused[0][0].replace(".", r"\.")):
            make(refused)
    make([("grpc.primary_user_agent", "x"), ("grpc.lb_policy_name", "round_robin"),
          ("grpc.enable_retries", 1), ("grpc.max_connection_age_ms", 60000), ("myapp.k", 1)])
