# Shared by the h2load benchmarks: a work directory with the 17-byte gRPC echo frame, starting a
# server that prints "listening on PORT", and a verified, median-of-$runs h2load measurement.
# The sourcing script sets its defaults ($build, $n requests per run, $runs, $calls), sources
# this file, then calls bench_args "$@".
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
printf '\x00\x00\x00\x00\x0chello world!' > "$work/req.bin"   # 17-byte gRPC frame
cp "$work/req.bin" "$work/static.bin"
frame=17

bench_args() {  # bench_args "$@": --requests N, --runs R, --calls N, --build-dir DIR
  while [ $# -gt 0 ]; do
    case "$1" in
      --requests) n=$2; shift ;;
      --runs) runs=$2; shift ;;
      --calls) calls=$2; shift ;;
      --build-dir) build=$2; shift ;;
      *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
  done
}

start() {  # start <name> <command...>: runs it, waits for "listening on PORT", sets $port
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do grep -q "listening on" "$work/$name.log" && break; sleep 0.05; done
  port=$(awk '/listening on/{print $3; exit}' "$work/$name.log")
}

clients_vs_c_server() {  # clients_vs_c_server <impl>... -- <command...>: runs
  # `<command...> <impl> 127.0.0.1:PORT $calls` for each impl against the C echo server; every
  # BENCH line must report failed=0
  local impls=()
  while [ "$1" != "--" ]; do impls+=("$1"); shift; done
  shift
  echo "== clients: $calls unary calls each, against the C echo server (2 loops, 2 workers)"
  start c_server "$build/echo_server" --port 0 --workers 2 --until-signal
  for impl in "${impls[@]}"; do
    local out
    out=$("$@" "$impl" "127.0.0.1:$port" "$calls")
    echo "$out"
    if echo "$out" | grep -q "failed=[1-9]"; then echo "failed calls: result not verified"; exit 1; fi
  done
  stop_server
}

stop_server() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

measure() {  # measure <label> <url> <grpc?> [var]: prints the median req/s of $runs runs
             # (and stores it in $result_<var>). A call answered without a message (e.g.
             # RESOURCE_EXHAUSTED, trailers only) is a rejection: it fails the run unless
             # $tolerate_rejects is 1, then the rejections are reported (and in $rejected_<var>).
  local label=$1 url=$2 grpc=$3 results=() rejected=0
  for _ in $(seq "$runs"); do
    local args=(-n "$n" -c 2 -m 16)
    [ "$grpc" = 1 ] && args+=(-d "$work/req.bin" -H "content-type: application/grpc" -H "te: trailers")
    h2load "${args[@]}" "$url" > "$work/out.txt" 2>&1
    local ok data rps missing
    ok=$(awk '/^requests:/{print $8}' "$work/out.txt")
    data=$(grep -oE '[0-9]+\) data' "$work/out.txt" | grep -oE '^[0-9]+')
    rps=$(awk '/^finished in/{gsub(",","",$4); print $4}' "$work/out.txt")
    missing=$(( n - ${data:-0} / frame ))
    if [ "$ok" != "$n" ] || [ $(( ${data:-0} % frame )) != 0 ] ||
       { [ "$missing" != 0 ] && [ "${tolerate_rejects:-0}" != 1 ]; }; then
      echo "$label: UNVERIFIED run (succeeded=$ok, data bytes=$data, want $n and $((n * frame));" \
           "$missing calls answered without a message)"
      cat "$work/out.txt"; exit 1
    fi
    rejected=$(( rejected + missing ))
    results+=("$rps")
  done
  local median
  median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  printf '%-40s %10.0f req/s   (runs: %s)%s\n' "$label" "$median" "${results[*]}" \
    "$([ "${tolerate_rejects:-0}" = 1 ] && echo "   rejected: $rejected of $((n * runs))")"
  [ -z "${4:-}" ] || eval "result_$4=$median rejected_$4=$rejected"
}
