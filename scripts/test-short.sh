#!/usr/bin/env bash
# test-short.sh: `go test -short -count=1 ./...`, but a package's test binary
# is linked again only when its code changed. On 2 cores, linking ~50 test
# binaries costs more than running every short test; `go test -c` skips the
# link when the binary it would write is already up to date (its build ID),
# so the binaries are kept in bin/test-short/. Every test still runs, every
# time. Unlike `go test`, no vet runs first: `make lint` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bin/test-short
go=${GO:-go}

# Packages with tests, as "import-path directory".
mapfile -t pkgs < <($go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)

# `go test -c -o DIR/` names each binary after the last element of its import
# path and refuses two of one name (internal/sweep, lambda/sweep): build in
# rounds, the n-th package of each name in round n.
declare -A seen
declare -a rounds jobs
for p in "${pkgs[@]}"; do
	path=${p% *} dir=${p#* }
	base=${path##*/}
	n=$((${seen[$base]:-0} + 1))
	seen[$base]=$n
	rounds[n]+=" $path"
	jobs+=("$path $dir $PWD/$out/$n/$base.test")
done
for n in "${!rounds[@]}"; do
	mkdir -p "$out/$n"
	# shellcheck disable=SC2086 # the import paths are split on purpose
	$go test -short -c -o "$out/$n/" ${rounds[n]}
done

# Run every binary in its package's directory, as go test does, four at a
# time: many short tests wait on sockets and timers, not on the CPU.
run() {
	local path=$1 dir=$2 bin=$3 log start status=0
	log=$(mktemp)
	start=$(date +%s%N)
	(cd "$dir" && "$bin" -test.short -test.count=1 -test.timeout=10m -test.paniconexit0) >"$log" 2>&1 || status=$?
	local took
	took=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.3fs", ns / 1e9 }')
	if [ "$status" -eq 0 ]; then
		printf 'ok  \t%s\t%s\n' "$path" "$took"
	else
		cat "$log"
		printf 'FAIL\t%s\t%s\n' "$path" "$took"
	fi
	rm -f "$log"
	return "$status"
}
export -f run
printf '%s\n' "${jobs[@]}" | xargs -P 4 -L 1 bash -c 'run "$@"' _ && exit 0
echo "FAIL: make test-short" >&2
exit 1
