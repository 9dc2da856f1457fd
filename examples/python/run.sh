#!/usr/bin/env bash
# The Python examples end to end (SWIFTGRPC_LIBRARY or the build tree provides the library):
# the Greeter served by swiftgrpc and called by swiftgrpc and by grpcio; served by grpcio and
# called by swiftgrpc; then the route guide (all four kinds) on swiftgrpc.aio; then the Greeter
# over mutual TLS with a token plugin, against grpcio both ways.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SWIFT_BACKTRACE=enable=no
cd "$here"
serve() {  # serve <args...>: starts greeter_server.py, sets $pid and $port
  coproc SERVER { exec python3 greeter_server.py --port 0 "$@"; }
  pid=$SERVER_PID
  read -r line <&"${SERVER[0]}"
  port=${line##* }
}
serve
trap 'kill $pid 2>/dev/null || true' EXIT
echo "== swiftgrpc Greeter server on port $port"
echo "-- called by swiftgrpc:"; python3 greeter_client.py "127.0.0.1:$port"
echo "-- called by grpcio:";    python3 greeter_client.py "127.0.0.1:$port" --grpcio
kill -INT $pid; wait $pid || true
serve --grpcio
echo "== grpcio Greeter server on port $port"
echo "-- called by swiftgrpc:"; python3 greeter_client.py "127.0.0.1:$port"
kill -INT $pid; wait $pid || true
echo "== route guide on swiftgrpc.aio"
python3 route_guide.py
echo "== secure greeter (mutual TLS, call credentials)"
python3 secure_greeter.py
echo "== a server that drains on SIGTERM (health NOT_SERVING, GOAWAY, grace, exit)"
python3 drain_check.py
