#!/usr/bin/env bash
# Client benchmark, one run: unary calls (5-byte echo) from the C client on libswiftgrpc
# (push callback, pull queue, and the blocking helper) and from a grpcio Python client, against
# the same grpcio server and against our C echo server. Sequential latency (p50/p99) and
# calls/s with 64 calls in flight (the blocking helper: 64 threads). Every response is checked
# (failed= counts mismatches). Needs a built tree (build/).
#   Tests/bench/client_bench.sh [--latency-calls N] [--throughput-calls N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${SWIFTGRPC_BUILD_DIR:-$root/build}"
lat_n=5000
thr_n=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --latency-calls) lat_n="$2"; shift ;;
    --throughput-calls) thr_n="$2"; shift ;;
  esac
  shift
done
export SWIFT_BACKTRACE=enable=no
method=/swiftgrpc.examples.Echo/Get
drv="$build/client_driver"

run_all() {  # $1 = server label, $2 = target
  echo "## server: $1"
  for mode in push pull; do
    flag=""; [ $mode = pull ] && flag=--pull
    echo "C client ($mode)        $("$drv" --target "$2" $flag --method $method bench "$lat_n" 1)"
    echo "C client ($mode)        $("$drv" --target "$2" $flag --method $method bench "$thr_n" 64)"
  done
  echo "C client (blocking)     $("$drv" --target "$2" --blocking --method $method bench "$lat_n" 1)"
  echo "C client (blocking)     $("$drv" --target "$2" --blocking --method $method bench "$thr_n" 64)"
  echo "grpcio Python client    $(python3 "$root/Tests/bench/grpcio_client_bench.py" "$2" $method "$lat_n" 1)"
  echo "grpcio Python client    $(python3 "$root/Tests/bench/grpcio_client_bench.py" "$2" $method "$((thr_n / 5))" 64)"
}

coproc GRPCIO { python3 "$root/examples/c/grpcio_echo_server.py"; }
read -r line <&"${GRPCIO[0]}"
run_all "grpcio (Python, sync, 8 threads)" "127.0.0.1:${line##* }"
eval "exec ${GRPCIO[1]}>&-"
wait "$GRPCIO_PID" || true

log=$(mktemp)
"$build/echo_server" --port 0 --until-signal >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 200); do grep -q listening "$log" && break; sleep 0.05; done
run_all "swiftgrpc C echo_server (2 loops, 2 workers)" "127.0.0.1:$(awk '/listening/{print $3}' "$log")"
