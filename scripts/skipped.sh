#!/usr/bin/env bash
# Prints the tests make test skipped, and how to run them: go test says ok
# for a package whose integration tests skipped for a missing tool.
# Usage: scripts/skipped.sh FILE (the lines testenv.Skipped wrote).
set -euo pipefail
file=$1
if [ ! -s "$file" ]; then
	echo "make test: nothing skipped"
	exit 0
fi
echo
echo "*** make test SKIPPED $(wc -l <"$file") test(s): they did not run ***"
sort -u "$file" | awk -F'\t' '{ printf "  %-60s %s\n", $1, $2 }'
echo "*** install what they name and run make test again (BASTION_TEST_STRICT=1 makes a skip a failure) ***"
