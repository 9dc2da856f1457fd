#!/usr/bin/env bash
# Builds the swiftgrpc gem with libswiftgrpc.so inside it. The library comes from
# SWIFTGRPC_LIBRARY, else the checkout's build/ (CMake) or .build/release/ (SwiftPM): build it
# first (see the repository README). Usage: bindings/ruby/build_gem.sh [OUTPUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here}"
lib="${SWIFTGRPC_LIBRARY:-}"
for c in "$root/build/libswiftgrpc.so" "$root/.build/release/libswiftgrpc.so"; do
  [ -n "$lib" ] || { [ -f "$c" ] && lib="$c"; } || true
done
[ -n "$lib" ] && [ -f "$lib" ] || { echo "libswiftgrpc.so not found: build it first" >&2; exit 1; }
cp "$lib" "$here/lib/swiftgrpc/libswiftgrpc.so"
trap 'rm -f "$here/lib/swiftgrpc/libswiftgrpc.so"' EXIT
(cd "$here" && gem build -q swiftgrpc.gemspec -o "$out/swiftgrpc.gem" >/dev/null 2>&1 || gem build swiftgrpc.gemspec -o "$out/swiftgrpc.gem")
echo "$out/swiftgrpc.gem"
