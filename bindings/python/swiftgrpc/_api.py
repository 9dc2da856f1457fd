"""grpcio's abstract interfaces (``grpc.Future``, ``grpc.Call``, ``grpc.RpcContext``, the
multi-callables, ``grpc.Status``, ``grpc.ServiceRpcHandler``), for annotations and isinstance
checks: swiftgrpc's own classes are registered as their virtual subclasses. Also the names of
grpcio features swiftgrpc does not have, raising NotImplementedError that names them."""
from __future__ import annotations

import abc
import enum
from typing import Any


class Future(abc.ABC):
    """grpcio's ``grpc.Future``: cancel, cancelled, running, done, result, exception,
    traceback, add_done_callback."""

    @abc.abstractmethod
    def cancel(self) -> bool: ...

    @abc.abstractmethod
    def cancelled(self) -> bool: ...

    @abc.abstractmethod
    def running(self) -> bool: ...

    @abc.abstractmethod
    def done(self) -> bool: ...

    @abc.abstractmethod
    def result(self, timeout: Any = None) -> Any: ...

    @abc.abstractmethod
    def exception(self, timeout: Any = None) -> Any: ...

    @abc.abstractmethod
    def traceback(self, timeout: Any = None) -> Any: ...

    @abc.abstractmethod
    def add_done_callback(self, fn: Any) -> None: ...


class RpcContext(abc.ABC):
    """grpcio's ``grpc.RpcContext``: is_active, time_remaining, cancel, add_callback."""

    @abc.abstractmethod
    def is_active(self) -> bool: ...

    @abc.abstractmethod
    def time_remaining(self) -> Any: ...

    @abc.abstractmethod
    def cancel(self) -> Any: ...

    @abc.abstractmethod
    def add_callback(self, callback: Any) -> bool: ...


class Call(RpcContext):
    """grpcio's ``grpc.Call``: an RpcContext with initial_metadata, trailing_metadata, code,
    details."""

    @abc.abstractmethod
    def initial_metadata(self) -> Any: ...

    @abc.abstractmethod
    def trailing_metadata(self) -> Any: ...

    @abc.abstractmethod
    def code(self) -> Any: ...

    @abc.abstractmethod
    def details(self) -> Any: ...


class Status(abc.ABC):
    """grpcio's ``grpc.Status`` (code, details, trailing_metadata), as taken by
    ServicerContext.abort_with_status (grpcio-status's rpc_status.to_status makes one)."""


class _MultiCallable(abc.ABC):
    @abc.abstractmethod
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


class UnaryUnaryMultiCallable(_MultiCallable):
    """grpcio's: ``__call__``, ``with_call``, ``future``."""


class UnaryStreamMultiCallable(_MultiCallable):
    """grpcio's: ``__call__`` returns a response iterator that is a Call and a Future."""


class StreamUnaryMultiCallable(_MultiCallable):
    """grpcio's: ``__call__``, ``with_call``, ``future``, taking a request iterator."""


class StreamStreamMultiCallable(_MultiCallable):
    """grpcio's: ``__call__`` taking a request iterator, returning a response iterator."""


class ServiceRpcHandler(abc.ABC):
    """grpcio's ``grpc.ServiceRpcHandler``: a GenericRpcHandler with service_name()."""

    @abc.abstractmethod
    def service_name(self) -> str: ...


class LocalConnectionType(enum.Enum):
    """grpcio's kinds of local connection (for local credentials, which swiftgrpc lacks)."""
    UDS = 0
    LOCAL_TCP = 1


def xds_channel_credentials(fallback_credentials: Any = None) -> Any:
    raise NotImplementedError("grpc.xds_channel_credentials (xDS) is not supported by swiftgrpc")


def xds_server_credentials(fallback_credentials: Any) -> Any:
    raise NotImplementedError("grpc.xds_server_credentials (xDS) is not supported by swiftgrpc")


def insecure_server_credentials() -> Any:
    raise NotImplementedError("grpc.insecure_server_credentials (for xDS fallback) is not "
                              "supported by swiftgrpc; use add_insecure_port")


def register_implementations() -> None:
    """swiftgrpc's classes as virtual subclasses of the interfaces they implement."""
    from ._channel import (CallFuture, StreamStreamMultiCallable as SS, StreamUnaryMultiCallable as SU,
                           UnaryStreamMultiCallable as US, UnaryUnaryMultiCallable as UU,
                           _ChannelReadyFuture, _StreamCall)
    from ._common import RpcError
    from ._interceptors import _Failure, _InterceptedMultiCallable, _Outcome
    from ._server import GenericRpcHandler, ServicerContext
    for cls in (CallFuture, _StreamCall, _ChannelReadyFuture, RpcError, _Outcome, _Failure):
        Future.register(cls)
    for cls in (CallFuture, _StreamCall, RpcError, _Outcome, _Failure):
        Call.register(cls)
    RpcContext.register(ServicerContext)
    for abc_cls, cls in ((UnaryUnaryMultiCallable, UU), (UnaryStreamMultiCallable, US),
                         (StreamUnaryMultiCallable, SU), (StreamStreamMultiCallable, SS)):
        abc_cls.register(cls)
        abc_cls.register(_InterceptedMultiCallable)
    ServiceRpcHandler.register(GenericRpcHandler)
