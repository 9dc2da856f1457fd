"""The health checking service (grpc.health.v1.Health) served by the library itself: Check and
Watch, as gRPC's doc/health-checking.md describes them, for Kubernetes gRPC probes,
grpc_health_probe and load balancers. The shape of grpcio-health-checking's ``HealthServicer``
(``set(service, status)`` with ``health_pb2.HealthCheckResponse`` statuses), but no Python runs
per health call::

    health = swiftgrpc.health.enable(server)   # before server.start()
    health.set("my.Service", swiftgrpc.health.NOT_SERVING)

The overall status (service ``""``) starts SERVING. ``server.stop(grace)`` first sets every
service NOT_SERVING and ends the Watch streams (what grpcio's ``enter_graceful_shutdown`` does),
then drains."""
from typing import Any

from . import _native as N
from ._common import UsageError

# grpc.health.v1.HealthCheckResponse.ServingStatus (equal to health_pb2's values).
UNKNOWN = N.HEALTH_UNKNOWN
SERVING = N.HEALTH_SERVING
NOT_SERVING = N.HEALTH_NOT_SERVING
SERVICE_UNKNOWN = N.HEALTH_SERVICE_UNKNOWN


class Health:
    """The built-in health service of one server."""

    def __init__(self, server: Any) -> None:
        native = getattr(server, "_native", None)
        if native is None:
            raise TypeError(f"enable() takes a swiftgrpc server (sync or asyncio), not "
                            f"{type(server).__name__}")
        taken = [m for m in native.methods if m.startswith("/grpc.health.v1.Health/")]
        if taken:
            raise UsageError(f"method {taken[0]} is already registered: the built-in health "
                             "service cannot serve it")
        rc = N.swiftgrpc_server_enable_health(native.handle)
        if rc == N.E_WRONG_STATE:
            raise UsageError("the health service must be enabled before the server starts")
        if rc == N.E_ALREADY_EXISTS:
            raise UsageError(N.last_error())
        N.check(rc, "swiftgrpc_server_enable_health")
        native.health = True
        self._server = server
        self._handle = native.handle

    def set(self, service: str, status: Any) -> None:
        """Sets `service`'s status (a ServingStatus value: SERVING, NOT_SERVING, ...) and tells
        its watchers. Ignored once the server is stopping (it stays NOT_SERVING)."""
        if not isinstance(service, str):
            raise TypeError(f"service must be str, got {type(service).__name__}")
        value = int(getattr(status, "value", status))
        rc = N.swiftgrpc_server_set_health(self._handle, service.encode(), value)
        if rc == N.E_INVALID_ARGUMENT:
            raise ValueError(N.last_error())
        if rc in (N.E_WRONG_STATE, N.E_BAD_HANDLE):
            return  # stopping or stopped: statuses stay NOT_SERVING, as grpcio's servicer
        N.check(rc, "swiftgrpc_server_set_health")


def enable(server: Any) -> Health:
    """Serves grpc.health.v1.Health on `server` (before it starts); returns its statuses."""
    return Health(server)
