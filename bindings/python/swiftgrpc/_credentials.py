"""TLS and call credentials: grpcio's credential functions (``grpc.ssl_server_credentials``,
``grpc.ssl_channel_credentials``, ``grpc.metadata_call_credentials``, ...) on libswiftgrpc's
credential handles.

Metadata plugins are asked through one event queue per process: a pump thread takes the
requests and runs each plugin call on a small thread pool (grpcio: "invoked asynchronously in a
separate thread"), which answers with swiftgrpc_call_credentials_answer. A certificate
configuration fetcher is called before each TLS handshake on the library's loop thread, as gRPC
C-core calls it; it must return promptly.
"""
from __future__ import annotations

import ctypes
import itertools
import logging
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _native as N
from ._common import Event, Pump, StatusCode, build_metadata, raise_native, runtime

_LOG = logging.getLogger("swiftgrpc")
_UNAVAILABLE = StatusCode.UNAVAILABLE.value[0]


def _pem(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("ascii", "strict")
    raise TypeError(f"{what} must be PEM bytes, got {type(value).__name__}")


def _identities(pairs: Any) -> Tuple[Any, int]:
    """A swiftgrpc_tls_identity array from grpcio's (private_key, certificate_chain) pairs (the
    array keeps the bytes it points to alive)."""
    if not pairs:
        raise ValueError("At least one private key-certificate chain pair is required!")
    pairs = list(pairs)
    arr = (N.TlsIdentity * len(pairs))()
    for i, pair in enumerate(pairs):
        try:
            key, chain = pair
        except (TypeError, ValueError):
            raise TypeError(f"entry {i} is not a (private_key, certificate_chain) pair") from None
        key, chain = _pem(key, "private_key"), _pem(chain, "certificate_chain")
        arr[i].certificate_chain, arr[i].certificate_chain_len = chain, len(chain)
        arr[i].private_key, arr[i].private_key_len = key, len(key)
    return arr, len(pairs)


def _roots(roots: Any) -> Tuple[Optional[bytes], int]:
    if roots is None:
        return None, 0
    b = _pem(roots, "root_certificates")
    return b, len(b)


def _checked(rc: int, function: str) -> None:
    if rc < 0:
        try:
            N.check(rc, function)
        except N.NativeError as e:
            raise_native(e)


# --------------------------------------------------------------------------------------------
# Server

class ServerCertificateConfiguration:
    """grpcio's ``grpc.ServerCertificateConfiguration``: identities and client roots that a
    certificate configuration fetcher hands out."""

    __slots__ = ("_pairs", "_roots")

    def __init__(self, pairs: List[Tuple[bytes, bytes]], roots: Optional[bytes]) -> None:
        self._pairs = pairs
        self._roots = roots


def ssl_server_certificate_configuration(private_key_certificate_chain_pairs: Sequence[Tuple[bytes, bytes]],
                                         root_certificates: Optional[bytes] = None) -> ServerCertificateConfiguration:
    """grpcio's ``grpc.ssl_server_certificate_configuration``."""
    if not private_key_certificate_chain_pairs:
        raise ValueError("At least one private key-certificate chain pair is required!")
    pairs = [(_pem(k, "private_key"), _pem(c, "certificate_chain"))
             for k, c in private_key_certificate_chain_pairs]
    return ServerCertificateConfiguration(pairs, None if root_certificates is None
                                          else _pem(root_certificates, "root_certificates"))


def _destroy_server_credentials(handle: int) -> None:
    N.swiftgrpc_server_credentials_set_fetcher(handle, N.NULL_HOST_FN, None)
    _fetchers.pop(handle, None)
    N.swiftgrpc_server_credentials_destroy(handle)


class ServerCredentials:
    """grpcio's ``grpc.ServerCredentials``: for ``Server.add_secure_port``. A server keeps the
    credentials it listens with."""

    def __init__(self, pairs: Any, roots: Any, client_auth: int) -> None:
        arr, n = _identities(pairs)
        rb, rl = _roots(roots)
        h = N.H()
        _checked(N.swiftgrpc_server_credentials_create(arr, n, rb, rl, client_auth, ctypes.byref(h)),
                 "swiftgrpc_server_credentials_create")
        self._handle = h.value
        self._client_auth = client_auth
        self._fetcher: Optional[Callable[[], Any]] = None
        self._finalizer = weakref.finalize(self, _destroy_server_credentials, self._handle)

    def _update(self, config: ServerCertificateConfiguration) -> None:
        arr, n = _identities(config._pairs)
        rb, rl = _roots(config._roots)
        _checked(N.swiftgrpc_server_credentials_update(self._handle, arr, n, rb, rl, self._client_auth),
                 "swiftgrpc_server_credentials_update")


def ssl_server_credentials(private_key_certificate_chain_pairs: Sequence[Tuple[bytes, bytes]],
                           root_certificates: Optional[bytes] = None,
                           require_client_auth: bool = False) -> ServerCredentials:
    """grpcio's ``grpc.ssl_server_credentials``. As in grpcio, a client certificate is asked
    for (and must verify against `root_certificates`) only with `require_client_auth`."""
    if not private_key_certificate_chain_pairs:
        raise ValueError("At least one private key-certificate chain pair is required!")
    if require_client_auth and root_certificates is None:
        raise ValueError("Illegal to require client auth without providing root certificates!")
    return ServerCredentials(private_key_certificate_chain_pairs, root_certificates,
                             N.CLIENT_AUTH_REQUIRE if require_client_auth else N.CLIENT_AUTH_NONE)


# handle -> the ServerCredentials whose fetcher runs (weakly: the finalizer unregisters).
_fetchers: "weakref.WeakValueDictionary[int, ServerCredentials]" = weakref.WeakValueDictionary()


def _on_fetch(ev: Any, user_data: Any) -> None:
    # On a loop thread, before a TLS handshake. Never raises into the library.
    try:
        handle = ev.contents.token
        creds = _fetchers.get(handle)
        fetch = creds._fetcher if creds is not None else None
        if fetch is None:
            return
        config = fetch()
        if config is None:
            return  # keep the current configuration
        if not isinstance(config, ServerCertificateConfiguration):
            _LOG.error("swiftgrpc: the certificate configuration fetcher returned %r, not a "
                       "ServerCertificateConfiguration; keeping the current one", type(config).__name__)
            return
        creds._update(config)
    except Exception:
        _LOG.exception("swiftgrpc: the certificate configuration fetcher failed; keeping the "
                       "current configuration")


# One C function pointer for every fetcher, alive as long as the module: the library may be
# about to call it while a ServerCredentials is collected.
_FETCH_FN = N.host_fn(_on_fetch)


def dynamic_ssl_server_credentials(initial_certificate_configuration: ServerCertificateConfiguration,
                                   certificate_configuration_fetcher: Callable[[], Any],
                                   require_client_authentication: bool = False) -> ServerCredentials:
    """grpcio's ``grpc.dynamic_ssl_server_credentials``: `certificate_configuration_fetcher()`
    is called before each new connection's handshake; a ServerCertificateConfiguration it
    returns applies to that connection and the later ones, None keeps the current one. It runs
    on a library thread and holds up that handshake: return promptly."""
    if not isinstance(initial_certificate_configuration, ServerCertificateConfiguration):
        raise TypeError("initial_certificate_configuration must come from "
                        "ssl_server_certificate_configuration()")
    if not callable(certificate_configuration_fetcher):
        raise TypeError("certificate_configuration_fetcher must be callable")
    initial = initial_certificate_configuration
    if require_client_authentication and initial._roots is None:
        raise ValueError("Illegal to require client auth without providing root certificates!")
    creds = ServerCredentials(initial._pairs, initial._roots,
                              N.CLIENT_AUTH_REQUIRE if require_client_authentication else N.CLIENT_AUTH_NONE)
    creds._fetcher = certificate_configuration_fetcher
    _fetchers[creds._handle] = creds
    _checked(N.swiftgrpc_server_credentials_set_fetcher(creds._handle, _FETCH_FN, None),
             "swiftgrpc_server_credentials_set_fetcher")
    return creds


def local_server_credentials(local_connect_type: Any = None) -> ServerCredentials:
    raise NotImplementedError("grpc.local_server_credentials is not supported by swiftgrpc; "
                              "use ssl_server_credentials or add_insecure_port")


def alts_server_credentials() -> ServerCredentials:
    raise NotImplementedError("grpc.alts_server_credentials (ALTS) is not supported by swiftgrpc")


# --------------------------------------------------------------------------------------------
# Call credentials

class AuthMetadataContext:
    """grpcio's ``grpc.AuthMetadataContext``: what a metadata plugin is told about the call."""

    __slots__ = ("service_url", "method_name")

    def __init__(self, service_url: str, method_name: str) -> None:
        self.service_url = service_url
        self.method_name = method_name

    def __repr__(self) -> str:
        return f"AuthMetadataContext(service_url={self.service_url!r}, method_name={self.method_name!r})"


class AuthMetadataPluginCallback:
    """grpcio's ``grpc.AuthMetadataPluginCallback``: `callback(metadata, error)`, once."""

    __slots__ = ("_request", "_lock", "_called")

    def __init__(self, request: int) -> None:
        self._request = request
        self._lock = threading.Lock()
        self._called = False

    def __call__(self, metadata: Any, error: Optional[BaseException]) -> None:
        with self._lock:
            if self._called:
                raise RuntimeError("AuthMetadataPluginCallback invoked more than once!")
            self._called = True
        if error is not None:
            _answer_failure(self._request, str(error))
            return
        try:
            arr, n = build_metadata(metadata, "metadata from the plugin")
        except (TypeError, ValueError) as e:
            _answer_failure(self._request, str(e))
            return
        rc = N.swiftgrpc_call_credentials_answer(self._request, arr, n, 0, None)
        if rc == N.E_INVALID_METADATA:
            _answer_failure(self._request, f"invalid metadata from the plugin: {N.last_error()}")
        # E_TOKEN_CLOSED: the call ended meanwhile (cancel, deadline); nothing to do.

    def _fail_unless_called(self, message: str) -> None:
        with self._lock:
            if self._called:
                return
            self._called = True
        _answer_failure(self._request, message)


def _answer_failure(request: int, message: str) -> None:
    """Fails the call: UNAVAILABLE "Getting metadata from plugin failed with error: <message>"."""
    N.swiftgrpc_call_credentials_answer(request, None, 0, _UNAVAILABLE, message.encode("utf-8", "replace"))


class AuthMetadataPlugin:
    """grpcio's ``grpc.AuthMetadataPlugin``: ``__call__(context, callback)`` gives the call's
    metadata to `callback`, or an exception."""

    def __call__(self, context: AuthMetadataContext, callback: AuthMetadataPluginCallback) -> None:
        raise NotImplementedError()


class _Plugins:
    """The process's plugin queue, its pump thread and the pool plugins run on."""

    def __init__(self) -> None:
        self.rt = runtime()
        self.queue = self.rt.new_queue()
        self.by_id: "weakref.WeakValueDictionary[int, CallCredentials]" = weakref.WeakValueDictionary()
        self.ids = itertools.count(1)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="swiftgrpc-auth-plugin")
        self.pump = Pump(self.queue, self._on_batch, "swiftgrpc-auth-pump")

    def _on_batch(self, batch: List[Event]) -> None:
        for ev in batch:
            if ev.type != N.EVENT_CREDENTIALS_REQUEST:
                continue
            creds = self.by_id.get(ev.tag or 0)
            if creds is None or creds._plugin is None:
                _answer_failure(ev.token, "the metadata plugin was garbage-collected")
                continue
            self.pool.submit(_run_plugin, creds._plugin, ev.token, ev.authority, ev.method)


def _run_plugin(plugin: Any, request: int, service_url: str, method_name: str) -> None:
    callback = AuthMetadataPluginCallback(request)
    try:
        plugin(AuthMetadataContext(service_url, method_name), callback)
    except Exception as e:  # grpcio: the exception's text fails the call
        _LOG.exception('swiftgrpc: AuthMetadataPlugin "%s" raised an exception', plugin)
        callback._fail_unless_called(str(e))


_plugins: Optional[_Plugins] = None
_plugins_lock = threading.Lock()


def _forget_plugins_after_fork() -> None:
    global _plugins, _plugins_lock
    _plugins, _plugins_lock = None, threading.Lock()  # the parent's pump is not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_plugins_after_fork)


def _plugin_queue() -> _Plugins:
    global _plugins
    with _plugins_lock:
        if _plugins is None:
            _plugins = _Plugins()
        return _plugins


class CallCredentials:
    """grpcio's ``grpc.CallCredentials``: metadata that authenticates calls, for
    ``composite_channel_credentials`` or a call's ``credentials=``. Sent only over TLS."""

    def __init__(self, handle: int, parts: Tuple["CallCredentials", ...] = (),
                 plugin: Any = None) -> None:
        self._handle = handle
        self._parts = parts  # composed credentials keep their plugins alive
        self._plugin = plugin
        self._finalizer = weakref.finalize(self, N.swiftgrpc_call_credentials_destroy, handle)


def access_token_call_credentials(access_token: str) -> CallCredentials:
    """grpcio's ``grpc.access_token_call_credentials``: "authorization: Bearer <token>"."""
    if not isinstance(access_token, str):
        raise TypeError(f"access_token must be str, got {type(access_token).__name__}")
    h = N.H()
    _checked(N.swiftgrpc_call_credentials_create_access_token(access_token.encode("utf-8"), ctypes.byref(h)),
             "swiftgrpc_call_credentials_create_access_token")
    return CallCredentials(h.value)


def metadata_call_credentials(metadata_plugin: Any, name: Optional[str] = None) -> CallCredentials:
    """grpcio's ``grpc.metadata_call_credentials``: `metadata_plugin(context, callback)` is
    called (on a pool thread) for every call; an exception it raises, or an error it passes to
    the callback, fails the call with UNAVAILABLE."""
    if not callable(metadata_plugin):
        raise TypeError("metadata_plugin must be callable (an AuthMetadataPlugin)")
    plugins = _plugin_queue()
    ident = next(plugins.ids)
    h = N.H()
    _checked(N.swiftgrpc_call_credentials_create_plugin(plugins.queue, N.NULL_HOST_FN, ident,
                                                        ctypes.byref(h)),
             "swiftgrpc_call_credentials_create_plugin")
    creds = CallCredentials(h.value, plugin=metadata_plugin)
    plugins.by_id[ident] = creds
    return creds


def _compose_call(items: Sequence[CallCredentials]) -> CallCredentials:
    for c in items:
        if not isinstance(c, CallCredentials):
            raise TypeError(f"expected CallCredentials, got {type(c).__name__}")
    out = items[0]
    for c in items[1:]:
        h = N.H()
        _checked(N.swiftgrpc_call_credentials_compose(out._handle, c._handle, ctypes.byref(h)),
                 "swiftgrpc_call_credentials_compose")
        out = CallCredentials(h.value, parts=(out, c))
    return out


def composite_call_credentials(*call_credentials: CallCredentials) -> CallCredentials:
    """grpcio's ``grpc.composite_call_credentials``: all of them, in order."""
    if len(call_credentials) < 2:
        raise ValueError("composite_call_credentials needs at least two CallCredentials")
    return _compose_call(call_credentials)


# --------------------------------------------------------------------------------------------
# Channel

class _InsecureChannelCredentials:
    """grpc.experimental.insecure_channel_credentials(): plaintext where credentials are asked
    (secure_channel, the simple stubs)."""

    def __repr__(self) -> str:
        return "insecure_channel_credentials()"


INSECURE = _InsecureChannelCredentials()


class ChannelCredentials:
    """grpcio's ``grpc.ChannelCredentials``: TLS settings (and call credentials) for
    ``secure_channel``."""

    def __init__(self, roots: Optional[bytes], key: Optional[bytes], chain: Optional[bytes],
                 call: Optional[CallCredentials] = None) -> None:
        self._roots, self._key, self._chain, self._call = roots, key, chain, call
        self._handle = self._create(None)  # checks the PEM texts now
        self._finalizer = weakref.finalize(self, N.swiftgrpc_channel_credentials_destroy, self._handle)

    def _create(self, server_name_override: Optional[str]) -> int:
        """A new channel-credentials handle (the caller destroys it)."""
        identity = None
        if self._key is not None:
            identity = N.TlsIdentity(self._chain, len(self._chain), self._key, len(self._key))  # type: ignore[arg-type]
        rb, rl = _roots(self._roots)
        name = None if server_name_override is None else server_name_override.encode("utf-8")
        h = N.H()
        _checked(N.swiftgrpc_channel_credentials_create(rb, rl, ctypes.byref(identity) if identity else None,
                                                        name, ctypes.byref(h)),
                 "swiftgrpc_channel_credentials_create")
        if self._call is None:
            return h.value
        out = N.H()
        rc = N.swiftgrpc_channel_credentials_compose(h.value, self._call._handle, ctypes.byref(out))
        N.swiftgrpc_channel_credentials_destroy(h.value)
        _checked(rc, "swiftgrpc_channel_credentials_compose")
        return out.value

    def with_call(self, call: CallCredentials) -> "ChannelCredentials":
        both = call if self._call is None else _compose_call((self._call, call))
        return ChannelCredentials(self._roots, self._key, self._chain, both)


def ssl_channel_credentials(root_certificates: Optional[bytes] = None, private_key: Optional[bytes] = None,
                            certificate_chain: Optional[bytes] = None) -> ChannelCredentials:
    """grpcio's ``grpc.ssl_channel_credentials``: `root_certificates` (None: the system's),
    and a client certificate for mutual TLS."""
    if (private_key is None) != (certificate_chain is None):
        raise ValueError("private_key and certificate_chain must be given together")
    return ChannelCredentials(
        None if root_certificates is None else _pem(root_certificates, "root_certificates"),
        None if private_key is None else _pem(private_key, "private_key"),
        None if certificate_chain is None else _pem(certificate_chain, "certificate_chain"))


def composite_channel_credentials(channel_credentials: ChannelCredentials,
                                  *call_credentials: CallCredentials) -> ChannelCredentials:
    """grpcio's ``grpc.composite_channel_credentials``: every call also carries the call
    credentials."""
    if not isinstance(channel_credentials, ChannelCredentials):
        raise TypeError(f"expected ChannelCredentials, got {type(channel_credentials).__name__}")
    if not call_credentials:
        raise ValueError("composite_channel_credentials needs at least one CallCredentials")
    return channel_credentials.with_call(_compose_call(call_credentials))


def local_channel_credentials(local_connect_type: Any = None) -> ChannelCredentials:
    raise NotImplementedError("grpc.local_channel_credentials is not supported by swiftgrpc; "
                              "use ssl_channel_credentials or insecure_channel")


def alts_channel_credentials(service_accounts: Any = None) -> ChannelCredentials:
    raise NotImplementedError("grpc.alts_channel_credentials (ALTS) is not supported by swiftgrpc")


def compute_engine_channel_credentials(call_credentials: Any) -> ChannelCredentials:
    raise NotImplementedError("grpc.compute_engine_channel_credentials is not supported by swiftgrpc")


# --------------------------------------------------------------------------------------------
# The server side of authentication: a call's auth context

def auth_context(auth: Tuple[Tuple[str, bytes], ...]) -> Dict[str, List[bytes]]:
    """grpcio's ``ServicerContext.auth_context()``: property name -> values (bytes)."""
    out: Dict[str, List[bytes]] = {}
    for k, v in auth:
        out.setdefault(k, []).append(v)
    return out


def peer_identity_key(auth: Tuple[Tuple[str, bytes], ...]) -> Optional[str]:
    """The property that names the peer (gRPC C-core's rule for TLS: the subject alternative
    names if the certificate has any, else the common name); None if the peer is not
    authenticated."""
    keys = {k for k, _ in auth}
    if "x509_subject_alternative_name" in keys:
        return "x509_subject_alternative_name"
    if "x509_common_name" in keys:
        return "x509_common_name"
    return None


def peer_identities(auth: Tuple[Tuple[str, bytes], ...]) -> Optional[List[bytes]]:
    key = peer_identity_key(auth)
    return None if key is None else [v for k, v in auth if k == key]
