#!/usr/bin/env bash
# cmake --install into a temporary prefix, then build the C example against the installed
# copy twice: with pkg-config, and with find_package(swiftgrpc) from a separate CMake project.
# Both binaries must serve a grpcio call.
set -euo pipefail
src=$1 build=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/swiftgrpc.h" && test -f "$prefix/lib/libswiftgrpc.so"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -std=c11 -Wall -Wextra -Werror "$src/examples/c/echo_server.c" $(pkg-config --cflags --libs swiftgrpc) \
  -lpthread -Wl,-rpath,"$prefix/lib" -o "$prefix/echo_pkgconfig"
mkdir -p "$prefix/consumer"
cat > "$prefix/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(swiftgrpc REQUIRED)
find_package(Threads REQUIRED)
add_executable(echo_cmake "$src/examples/c/echo_server.c")
target_link_libraries(echo_cmake PRIVATE swiftgrpc::swiftgrpc Threads::Threads)
set_target_properties(echo_cmake PROPERTIES BUILD_RPATH "$prefix/lib")
CMAKE
cmake -S "$prefix/consumer" -B "$prefix/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer/build" >/dev/null
for exe in "$prefix/echo_pkgconfig" "$prefix/consumer/build/echo_cmake"; do
  ldd "$exe" | grep -q "$prefix/lib/libswiftgrpc.so" || { echo "$exe does not use the installed library"; exit 1; }
  "$exe" --port 0 --until-signal > "$prefix/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$prefix/log" && break; sleep 0.05; done
  port=$(awk '/listening/{print $3}' "$prefix/log")
  python3 -c "
import grpc
r = grpc.insecure_channel('127.0.0.1:$port').unary_unary('/swiftgrpc.examples.Echo/Get')(b'installed', timeout=10)
assert r == b'installed', r"
  kill -TERM $pid; wait $pid
  echo "$(basename "$exe"): built against the installed package and served a grpcio call"
done
