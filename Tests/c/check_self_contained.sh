#!/usr/bin/env bash
# The release library loads and serves with no Swift toolchain present: /opt/swift is hidden
# under an empty tmpfs in a private mount namespace, then the C example serves a grpcio call.
set -euo pipefail
build=$1
if ldd "$build/libswiftgrpc.so" | grep -q swift; then
  echo "libswiftgrpc.so links a Swift runtime library:"; ldd "$build/libswiftgrpc.so"; exit 1
fi
if ! unshare -m true 2>/dev/null; then echo "unshare -m unavailable: cannot hide /opt/swift"; exit 1; fi
unshare -m bash -c '
  set -euo pipefail
  mount -t tmpfs none /opt/swift
  test -z "$(ls /opt/swift)"
  ! command -v swift >/dev/null
  "$0/echo_server" --port 0 --until-signal > "$0/self_contained.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$0/self_contained.log" && break; sleep 0.05; done
  port=$(awk "/listening/{print \$3}" "$0/self_contained.log")
  python3 -c "
import grpc,sys
ch = grpc.insecure_channel(\"127.0.0.1:$port\")
r = ch.unary_unary(\"/swiftgrpc.examples.Echo/Get\")(b\"no toolchain\", timeout=10)
assert r == b\"no toolchain\", r
print(\"served without /opt/swift:\", r)
"
  kill -TERM $pid; wait $pid
' "$build"
