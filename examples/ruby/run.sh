#!/usr/bin/env bash
# The Ruby examples end to end (SWIFTGRPC_LIBRARY or the build tree provides the library):
# the Greeter served by swiftgrpc and called by swiftgrpc (threads and fibers) and by the grpc
# gem; served by the grpc gem and called by swiftgrpc. Messages are generated from helloworld.proto first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SWIFT_BACKTRACE=enable=no
gen="$(mktemp -d)"
trap 'rm -rf "$gen"; kill $pid 2>/dev/null || true' EXIT
grpc_tools_ruby_protoc -I "$here/../python/protos" --ruby_out="$gen" --grpc_out="$gen" helloworld.proto
export RUBYLIB="$gen:$here/../../bindings/ruby/lib${RUBYLIB:+:$RUBYLIB}"
cd "$here"
serve() {  # serve <args...>: starts greeter_server.rb, sets $pid and $port
  coproc SERVER { exec ruby greeter_server.rb 0 "$@"; }
  pid=$SERVER_PID
  read -r line <&"${SERVER[0]}"
  port=${line##* }
}
expect() {  # expect <text> <command...>
  local want="$1"; shift
  local got; got="$("$@")"
  echo "$got"
  [ "$got" = "$want" ] || { echo "expected: $want" >&2; exit 1; }
}
serve
echo "== swiftgrpc Greeter server on port $port"
expect "Hello Ruby, from swiftgrpc" ruby greeter_client.rb "127.0.0.1:$port"
expect "Hello Ruby, from the grpc gem" ruby greeter_client.rb "127.0.0.1:$port" --grpc
expect "20 replies, first: Hello fiber 0, from a fiber, last: Hello fiber 19, from a fiber" \
  ruby fiber_greeter_client.rb "127.0.0.1:$port" 20
kill -INT $pid; wait $pid
serve --grpc
echo "== grpc gem Greeter server on port $port"
expect "Hello Ruby, from swiftgrpc" ruby greeter_client.rb "127.0.0.1:$port"
expect "20 replies, first: Hello fiber 0, from a fiber, last: Hello fiber 19, from a fiber" \
  ruby fiber_greeter_client.rb "127.0.0.1:$port" 20
kill -INT $pid; wait $pid || true

# Code written for the grpc gem (gem_greeter_*.rb, `require "grpc"`), run unchanged on swiftgrpc
# by preloading swiftgrpc/grpc, against itself and against the gem in both directions.
gem_serve() {  # gem_serve <ruby args...>: starts gem_greeter_server.rb, sets $pid and $port
  coproc SERVER { exec ruby "$@" gem_greeter_server.rb 0; }
  pid=$SERVER_PID
  read -r line <&"${SERVER[0]}"
  port=${line##* }
}
want_gem() {  # the client's output against a server run on $1
  printf '%s\n' "Hello Ruby (served by $1)" "INVALID_ARGUMENT: name must not be empty (name)" \
    "UNAUTHENTICATED: missing or wrong x-api-key"
}
gem_serve -rswiftgrpc/grpc
echo "== gem-style Greeter server on swiftgrpc, port $port"
expect "$(want_gem swiftgrpc)" ruby -rswiftgrpc/grpc gem_greeter_client.rb "127.0.0.1:$port"
expect "$(want_gem swiftgrpc)" ruby gem_greeter_client.rb "127.0.0.1:$port"
kill -TERM $pid; wait $pid
gem_serve
echo "== gem-style Greeter server on the grpc gem, port $port"
expect "$(want_gem 'the grpc gem')" ruby -rswiftgrpc/grpc gem_greeter_client.rb "127.0.0.1:$port"
kill -TERM $pid; wait $pid || true
echo "ruby examples: ok"
