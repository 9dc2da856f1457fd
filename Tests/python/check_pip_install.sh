#!/usr/bin/env bash
# `pip install ./bindings/python` from a built tree yields a package that bundles
# libswiftgrpc.so and works without grpcio and without the source tree: installs into a fresh
# venv, then serves and calls from a directory outside the checkout.
#   Tests/python/check_pip_install.sh <source dir> <build dir>
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" "$work/venv/bin/pip" install -q \
  --disable-pip-version-check "$src/bindings/python"
cd "$work"
env -u SWIFTGRPC_LIBRARY SWIFT_BACKTRACE=enable=no "$work/venv/bin/python" - <<'PY'
import importlib.util, os
import swiftgrpc
assert importlib.util.find_spec("grpc") is None, "the venv must not have grpcio"
assert swiftgrpc.library_path.startswith(os.path.dirname(swiftgrpc.__file__)), swiftgrpc.library_path
assert os.path.exists(os.path.join(os.path.dirname(swiftgrpc.__file__), "py.typed"))
s = swiftgrpc.server(max_workers=2)
s.add_method("/t.S/Rev", swiftgrpc.unary_unary_rpc_method_handler(lambda req, ctx: req[::-1]))
port = s.add_insecure_port("127.0.0.1:0")
s.start()
with swiftgrpc.insecure_channel(f"127.0.0.1:{port}") as ch:
    assert ch.unary_unary("/t.S/Rev")(b"abc") == b"cba"
    try:
        ch.unary_unary("/t.S/Missing")(b"")
        raise SystemExit("expected UNIMPLEMENTED")
    except swiftgrpc.RpcError as e:
        assert e.code() == swiftgrpc.StatusCode.UNIMPLEMENTED
s.stop(None).wait()
print("installed package OK:", swiftgrpc.library_path, swiftgrpc.version())
PY
