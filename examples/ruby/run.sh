#!/usr/bin/env bash
# The Ruby examples end to end (SWIFTGRPC_LIBRARY or the build tree provides the library):
# the Greeter served by swiftgrpc and called by swiftgrpc and by the grpc gem; served by the
# grpc gem and called by swiftgrpc. Messages are generated from helloworld.proto first.
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
kill -INT $pid; wait $pid
serve --grpc
echo "== grpc gem Greeter server on port $port"
expect "Hello Ruby, from swiftgrpc" ruby greeter_client.rb "127.0.0.1:$port"
kill -INT $pid; wait $pid || true
echo "ruby examples: ok"
