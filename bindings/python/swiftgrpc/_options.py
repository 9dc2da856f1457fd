"""Which grpcio options swiftgrpc honours, and the rule for the others: an option grpcio
honours and swiftgrpc does not is refused with a ValueError naming it, never silently ignored.
Options that do nothing in grpcio either where they are given (a server's options passed to a
channel, and the reverse: code often shares one list) are accepted, as are a few whose value
says what swiftgrpc does anyway. Keys outside the ``grpc.`` and ``swiftgrpc.`` namespaces are a
program's own (grpcio ignores them too)."""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

# Server-side options: no effect on a channel (in grpcio either).
SERVER_ONLY = frozenset({
    "grpc.max_concurrent_streams", "grpc.server_handshake_timeout_ms", "grpc.so_reuseport",
    "grpc.max_connection_idle_ms", "grpc.max_connection_age_ms", "grpc.max_connection_age_grace_ms",
    "grpc.http2.min_ping_interval_without_data_ms", "grpc.http2.max_ping_strikes",
    "swiftgrpc.max_control_frames_per_second",
})
# Channel-side options: no effect on a server (in grpcio either).
CHANNEL_ONLY = frozenset({
    "grpc.primary_user_agent", "grpc.default_authority", "grpc.lb_policy_name",
    "grpc.initial_reconnect_backoff_ms", "grpc.min_reconnect_backoff_ms",
    "grpc.max_reconnect_backoff_ms", "grpc.dns_min_time_between_resolutions_ms",
    "grpc.ssl_target_name_override", "swiftgrpc.default_timeout_ms",
    "grpc.http2.max_pings_without_data",
})


def _zero(key: str, value: Any) -> Optional[str]:
    return None if int(value) == 0 else f"only 0 is supported ({key}={value!r})"


# Options accepted for the values that describe what swiftgrpc does.
AS_SWIFTGRPC_DOES: Dict[str, Callable[[str, Any], Optional[str]]] = {
    # Without a service config grpcio's only retries are transparent ones, which swiftgrpc makes.
    "grpc.enable_retries": lambda k, v: None,
    # swiftgrpc never goes through an HTTP proxy.
    "grpc.enable_http_proxy": _zero,
    # swiftgrpc sends keepalive pings without a limit on those without data.
    "grpc.http2.max_pings_without_data": _zero,
}


def check(options: Optional[Sequence[Tuple[str, Any]]], handled: Sequence[str], where: str,
          other_side: frozenset) -> None:
    """Raises ValueError for the first option of `options` that is in grpcio's namespace (or
    ours) and that swiftgrpc neither honours here (`handled`) nor may accept as a no-op."""
    for key, value in options or ():
        if not isinstance(key, str):
            raise TypeError(f"option names are str, got {type(key).__name__}")
        if key in handled or key in other_side:
            continue
        rule = AS_SWIFTGRPC_DOES.get(key)
        if rule is not None:
            why = rule(key, value)
            if why is None:
                continue
            raise ValueError(f"{where}: option {key!r} is not supported by swiftgrpc: {why}")
        if key.startswith(("grpc.", "swiftgrpc.")):
            raise ValueError(
                f"{where}: option {key!r} is not supported by swiftgrpc (it is not ignored: "
                f"remove it or ask for it); the {where.split()[-1]} options swiftgrpc honours: "
                f"{', '.join(sorted(handled))}")
