#!/bin/bash
# Counts the instructions a benchmark server process executes per request,
# with valgrind's callgrind: a figure that other load on the machine does
# not change (the load test's throughput and CPU time do), for comparing
# commits on a shared machine.
#
#   benchmarks/server-instructions.sh [fhirguard-bench binary]
#
# For each scenario (bare, guard-system, guard-patient: as in
# `fhirguard-bench load`), `fhirguard-bench serve` runs under callgrind with
# GOMAXPROCS=1 and the default GOGC (garbage collection included); after
# start-up and 20 warm-up requests its counters are zeroed, then
# `fhirguard-bench requests` sends N requests, one after the other on one
# keep-alive connection (the bare server gets the system token too, which
# it ignores), and the counters are dumped. The figure is the difference
# between runs of N2 and N1 requests, divided by N2-N1, so that start-up,
# shutdown and the quantisation of garbage collection cycles cancel out.
# Knobs: N1 (default 1000), N2 (default 11000), CLIENT (the binary whose
# `requests` sends them; default: the one measured, which for an older
# commit may lack it). Needs valgrind (Debian: apt-get install valgrind);
# about 5 minutes.
set -euo pipefail

cd "$(dirname "$0")/.."
bin=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$bin" ]; then
	go build -o "$tmp/fhirguard-bench" ./benchmarks/cmd/fhirguard-bench
	bin=$tmp/fhirguard-bench
fi
N1=${N1:-1000}
N2=${N2:-11000}
client=${CLIENT:-$bin}

# count MODE TOKENKIND N: instructions of the server while it serves N requests.
count() {
	local mode=$1 kind=$2 n=$3 dir
	dir=$(mktemp -d "$tmp/run.XXXX")
	mkfifo "$dir/stdin"
	GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind \
		--callgrind-out-file="$dir/cg" "$bin" serve -mode "$mode" <"$dir/stdin" >"$dir/hello" 2>"$dir/err" &
	local pid=$!
	exec 3>"$dir/stdin"
	for _ in $(seq 600); do
		grep -q addr "$dir/hello" 2>/dev/null && break
		sleep 0.2
	done
	local addr tok
	addr=$(sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' "$dir/hello")
	tok=$(sed -n "s/.*\"$kind\":\"\\([^\"]*\\)\".*/\\1/p" "$dir/hello")
	if [ -z "$tok" ]; then # the bare server: the token of a guard server, ignored
		tok=$guardSystemToken
	fi
	local url="http://$addr/fhir/Observation/1"
	"$client" requests -url "$url" -token "$tok" -n 20
	callgrind_control -z "$pid" >/dev/null 2>&1
	"$client" requests -url "$url" -token "$tok" -n "$n"
	callgrind_control -d "$pid" >/dev/null 2>&1
	exec 3>&-
	wait "$pid"
	sed -n 's/^\(summary\|totals\): *//p' "$dir/cg.1" | head -1
}

# A token of the right size for the bare server to ignore.
mkfifo "$tmp/hold"
"$bin" serve -mode guard <"$tmp/hold" >"$tmp/guard-hello" &
exec 4>"$tmp/hold"
for _ in $(seq 100); do
	grep -q system "$tmp/guard-hello" 2>/dev/null && break
	sleep 0.1
done
guardSystemToken=$(sed -n 's/.*"system":"\([^"]*\)".*/\1/p' "$tmp/guard-hello")
exec 4>&-
wait

echo "| scenario | instructions per request | added to bare |"
echo "|---|---:|---:|"
bare=0
for sc in "bare system" "guard system" "guard patient"; do
	set -- $sc
	a=$(count "$1" "$2" "$N1")
	b=$(count "$1" "$2" "$N2")
	per=$(((b - a) / (N2 - N1)))
	name=$1
	[ "$1" = guard ] && name="guard-$2"
	if [ "$1" = bare ]; then
		bare=$per
		echo "| $name | $per | |"
	else
		echo "| $name | $per | +$((per - bare)) ($(awk "BEGIN{printf \"%.0f\", 100*($per-$bare)/$bare}") %) |"
	fi
done
