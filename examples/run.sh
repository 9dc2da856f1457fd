#!/usr/bin/env bash
# The flagship example end to end: builds libswiftgrpc.so, the C echo server and the C echo
# client; calls the C server with a grpcio (Python) client and with the C client, and a grpcio
# server with the C client -- all four RPC kinds each time.
#   examples/run.sh [--no-install] [--build-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
install=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --build-dir) build="$2"; shift ;;
  esac
  shift
done
export PATH="/opt/swift/usr/bin:$PATH" SWIFT_BACKTRACE=enable=no
if [ $install = 1 ]; then
  bash "$root/Tests/install-prereqs.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target echo_server echo_client
fi
log=$(mktemp)
"$build/echo_server" --port 0 --verbose --until-signal >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 200); do grep -q listening "$log" && break; sleep 0.05; done
port=$(awk '/listening/{print $3}' "$log")
echo "== C echo server on libswiftgrpc: $(head -1 "$log")"
python3 "$root/examples/c/grpcio_client.py" "127.0.0.1:$port"
kill -TERM $pid
wait $pid
echo "== what the server saw:"
tail -n +2 "$log"
echo "== C client -> C server"
"$build/echo_server" --port 0 >"$log" 2>&1 < <(sleep 60) &
pid=$!
for _ in $(seq 200); do grep -q listening "$log" && break; sleep 0.05; done
"$build/echo_client" "127.0.0.1:$(awk '/listening/{print $3}' "$log")"
kill -TERM $pid
wait $pid || true
echo "== C client -> grpcio server"
coproc GRPCIO { python3 "$root/examples/c/grpcio_echo_server.py"; }
read -r line <&"${GRPCIO[0]}"
"$build/echo_client" "127.0.0.1:${line##* }"
eval "exec ${GRPCIO[1]}>&-"
wait
