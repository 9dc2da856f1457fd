"""grpcio's ``grpc.experimental``: the simple-stub functions that generated code calls
(``unary_unary(request, target, method, ...)`` and the three other kinds), on channels kept per
(target, options, credentials, compression) as grpcio keeps them; ``insecure_channel_credentials``;
``wrap_server_method_handler``."""
from __future__ import annotations

import collections
import os
import threading
import warnings
from typing import Any, Callable, Optional, Sequence, Tuple

from ._channel import Channel, insecure_channel, secure_channel
from ._common import UsageError  # noqa: F401  (grpc.experimental.UsageError)
from ._credentials import INSECURE, ChannelCredentials, ssl_channel_credentials

__all__ = ["ChannelOptions", "ExperimentalApiWarning", "UsageError", "insecure_channel_credentials",
           "stream_stream", "stream_unary", "unary_stream", "unary_unary", "wrap_server_method_handler"]


class ExperimentalApiWarning(Warning):
    """grpcio warns with this on first use of an experimental API; swiftgrpc does not."""


class ChannelOptions:
    """grpcio's experimental channel option names."""
    SingleThreadedUnaryStream = "SingleThreadedUnaryStream"


_INSECURE = INSECURE


def insecure_channel_credentials() -> Any:
    """Credentials meaning "no TLS", for the simple stubs (and secure_channel)."""
    return _INSECURE


def experimental_api(f: Callable[..., Any]) -> Callable[..., Any]:
    """grpcio's decorator marking an experimental API (it warns once there); unchanged here."""
    return f


def ssl_channel_credentials_with_custom_signer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("grpc.experimental.ssl_channel_credentials_with_custom_signer "
                              "(custom private-key signing) is not supported by swiftgrpc")


def wrap_server_method_handler(wrapper: Callable[[Any], Any], handler: Any) -> Any:
    """grpcio's: `handler` with its behaviour (whichever of the four it has) passed through
    `wrapper`; None stays None."""
    if not handler:
        return None
    for field in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behavior = getattr(handler, field)
        if behavior is not None:
            return handler._replace(**{field: wrapper(behavior)})
    return handler


# -- the channels the simple stubs use: one per key, the oldest closed beyond _MAX

_MAX = 256
_lock = threading.Lock()
_channels: "collections.OrderedDict[Tuple[Any, ...], Channel]" = collections.OrderedDict()


_defaults: list = []


def _default_credentials() -> ChannelCredentials:
    with _lock:
        if not _defaults:
            _defaults.append(ssl_channel_credentials())
        return _defaults[0]


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _channels.clear()  # the parent's (refused in the child)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _channel(target: str, options: Sequence[Tuple[str, Any]], channel_credentials: Any,
             insecure: bool, compression: Any) -> Channel:
    if insecure and channel_credentials is not None:
        raise ValueError("The insecure option is mutually exclusive with the channel_credentials "
                         "option. Please use one or the other.")
    if insecure:
        channel_credentials = _INSECURE
    elif channel_credentials is None:  # as grpcio: TLS with the default roots (made once, so
        channel_credentials = _default_credentials()  # that its calls share their channels)
    if channel_credentials is not _INSECURE and not isinstance(channel_credentials, ChannelCredentials):
        raise TypeError(f"channel_credentials must be ChannelCredentials, got "
                        f"{type(channel_credentials).__name__}")
    key = (target, tuple(options or ()), id(channel_credentials), compression)
    with _lock:
        ch = _channels.get(key)
        if ch is not None:
            _channels.move_to_end(key)
            return ch
        if channel_credentials is _INSECURE:
            ch = insecure_channel(target, options, compression)
        else:
            ch = secure_channel(target, channel_credentials, options, compression)
        ch._simple_stub_creds = channel_credentials  # the key's id stays this object's
        _channels[key] = ch
        old = _channels.popitem(last=False)[1] if len(_channels) > _MAX else None
    if old is not None:
        old.close()
    return ch


def _simple(kind: str) -> Callable[..., Any]:
    def call(request: Any, target: str, method: str, request_serializer: Any = None,
             response_deserializer: Any = None, options: Sequence[Tuple[str, Any]] = (),
             channel_credentials: Any = None, insecure: bool = False, call_credentials: Any = None,
             compression: Any = None, wait_for_ready: Optional[bool] = None,
             timeout: Optional[float] = None, metadata: Any = None,
             _registered_method: Any = False) -> Any:
        ch = _channel(target, options, channel_credentials, insecure, compression)
        mc = getattr(ch, kind)(method, request_serializer, response_deserializer)
        # as grpcio's simple stubs: wait for the connection unless told otherwise
        return mc(request, timeout=timeout, metadata=metadata, credentials=call_credentials,
                  wait_for_ready=True if wait_for_ready is None else wait_for_ready,
                  compression=compression)
    call.__name__ = kind
    call.__doc__ = (f"grpcio's grpc.experimental.{kind}: one call of `method` on `target`, on a "
                    "channel kept for the next calls with the same target, options, credentials "
                    "and compression.")
    return call


unary_unary = _simple("unary_unary")
unary_stream = _simple("unary_stream")
stream_unary = _simple("stream_unary")
stream_stream = _simple("stream_stream")
warnings.filterwarnings("ignore", category=ExperimentalApiWarning)
