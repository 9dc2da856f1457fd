"""One servicer for both grpcio's and swiftgrpc's servers (the drop-in claim), sync and async.
The request's `text` is a command:
  echo                  -> the request back; x-* request metadata back as trailers
  initial-md            -> sends initial metadata {"x-initial": "1", "x-initial-bin": b"\\x00\\xff"}
  status:<code>:<msg>   -> context.abort(code, msg) (msg may be anything)
  set-code:<code>       -> set_code / set_details, then returns normally
  raise:<Exception>     -> raises that builtin exception
  sleep:<seconds>:<id>  -> sleeps until the call ends or the time passes; records
                           ("cancelled" | "finished", time_remaining at start) under <id>
                           (started_event(<id>) is set once the handler runs)
  deadline              -> returns time_remaining() as text
  peer                  -> returns context.peer()
  auth                  -> returns the auth context (repr of peer_identity_key(), peer_identities()
                           and auth_context() without x509_pem_cert), and the call's x-*/authorization
                           metadata; `data` holds the client's PEM certificate if one came
ServerStream: `n` messages "i" (sleep:<s>:<id> between each: for cancellation tests).
ClientStream: texts joined with ","; data concatenated.
Bidi: each text upper-cased, in order.
"""
import asyncio
import builtins
import threading
import time

import svc_pb2
import svc_pb2_grpc

LOG = {}
LOG_EVENTS = {}
_lock = threading.Lock()


def log_event(key):
    with _lock:
        return LOG_EVENTS.setdefault(key, threading.Event())


def started_event(key):
    """Set once the handler of the call sleeping under `key` runs."""
    return log_event(("started", key))


def _status(code_name):
    import grpc
    return getattr(grpc.StatusCode, code_name)


def _trailers(context):
    return [(k, v) for k, v in context.invocation_metadata() if k.startswith("x-")]


def _auth(context):
    props = dict(context.auth_context())
    pem = (props.pop("x509_pem_cert", None) or [b""])[0]
    md = sorted((k, v) for k, v in context.invocation_metadata()
                if k.startswith("x-") or k == "authorization")
    text = repr((context.peer_identity_key(), context.peer_identities(), sorted(props.items()), md))
    return svc_pb2.Msg(text=text, data=pem)


class Servicer(svc_pb2_grpc.SvcServicer):
    def Unary(self, request, context):
        cmd = request.text
        if cmd == "echo":
            context.set_trailing_metadata(_trailers(context))
            return svc_pb2.Msg(text=request.text, data=request.data)
        if cmd == "initial-md":
            context.send_initial_metadata([("x-initial", "1"), ("x-initial-bin", b"\x00\xff")])
            return svc_pb2.Msg(text="ok")
        if cmd.startswith("status:"):
            _, code, msg = cmd.split(":", 2)
            context.abort(_status(code), msg)
        if cmd.startswith("set-code:"):
            context.set_code(_status(cmd.split(":", 1)[1]))
            context.set_details("chosen by the handler")
            return svc_pb2.Msg()
        if cmd.startswith("raise:"):
            raise getattr(builtins, cmd.split(":", 1)[1])("raised on purpose")
        if cmd.startswith("sleep:"):
            _, secs, key = cmd.split(":", 2)
            ended = threading.Event()
            context.add_callback(ended.set)
            remaining = context.time_remaining()
            started_event(key).set()
            ended.wait(float(secs))
            LOG[key] = ("cancelled" if not context.is_active() else "finished", remaining)
            log_event(key).set()
            return svc_pb2.Msg(text="slept")
        if cmd == "deadline":
            return svc_pb2.Msg(text=repr(context.time_remaining()))
        if cmd == "peer":
            return svc_pb2.Msg(text=context.peer())
        if cmd == "auth":
            return _auth(context)
        return svc_pb2.Msg(text="unknown command")

    def ServerStream(self, request, context):
        pause, key = 0.0, None
        if request.text.startswith("sleep:"):
            _, s, key = request.text.split(":", 2)
            pause = float(s)
            context.add_callback(lambda: (LOG.__setitem__(key, ("ended", None)), log_event(key).set()))
        for i in range(request.n):
            if pause:
                time.sleep(pause)
            if not context.is_active():
                return
            yield svc_pb2.Msg(text=str(i), data=request.data)

    def ClientStream(self, request_iterator, context):
        texts, data = [], b""
        for m in request_iterator:
            texts.append(m.text)
            data += m.data
        return svc_pb2.Msg(text=",".join(texts), data=data, n=len(texts))

    def Bidi(self, request_iterator, context):
        for m in request_iterator:
            if m.text.startswith("sleep:"):
                _, s, key = m.text.split(":", 2)
                context.add_callback(lambda: (LOG.__setitem__(key, ("ended", None)), log_event(key).set()))
                time.sleep(float(s))
            yield svc_pb2.Msg(text=m.text.upper(), data=m.data)


class AsyncServicer(svc_pb2_grpc.SvcServicer):
    async def Unary(self, request, context):
        cmd = request.text
        if cmd == "echo":
            context.set_trailing_metadata(_trailers(context))
            return svc_pb2.Msg(text=request.text, data=request.data)
        if cmd.startswith("status:"):
            _, code, msg = cmd.split(":", 2)
            await context.abort(_status(code), msg)
        if cmd.startswith("raise:"):
            raise getattr(builtins, cmd.split(":", 1)[1])("raised on purpose")
        if cmd.startswith("sleep:"):
            _, secs, key = cmd.split(":", 2)
            log_event(key + ":started").set()
            try:
                await asyncio.sleep(float(secs))
                LOG[key] = ("finished", None)
            except asyncio.CancelledError:
                LOG[key] = ("cancelled", None)
                raise
            finally:
                log_event(key).set()
            return svc_pb2.Msg(text="slept")
        if cmd == "auth":
            return _auth(context)
        return svc_pb2.Msg(text="unknown command")

    async def ServerStream(self, request, context):
        for i in range(request.n):
            yield svc_pb2.Msg(text=str(i), data=request.data)

    async def ClientStream(self, request_iterator, context):
        texts, data = [], b""
        async for m in request_iterator:
            texts.append(m.text)
            data += m.data
        return svc_pb2.Msg(text=",".join(texts), data=data, n=len(texts))

    async def Bidi(self, request_iterator, context):
        async for m in request_iterator:
            yield svc_pb2.Msg(text=m.text.upper(), data=m.data)


class Named(Servicer):
    """Answers the command "whoami" with its name: which of several servers a call reached."""

    def __init__(self, name):
        self.name = name

    def Unary(self, request, context):
        if request.text == "whoami":
            return svc_pb2.Msg(text=self.name)
        return super().Unary(request, context)
