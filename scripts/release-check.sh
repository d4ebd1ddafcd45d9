#!/usr/bin/env bash
# Checks what `goreleaser release --snapshot` left in dist/: the supervisor
# archives for linux amd64 and arm64, each Lambda zip holding its bootstrap
# alone (arm64), checksums of them all, the SBOM, and a supervisor that
# says its version.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

version=$(python3 -c 'import json; print(json.load(open("dist/metadata.json"))["version"])')
for arch in amd64 arm64; do
	f=dist/supervisor_${version}_linux_${arch}.tar.gz
	if tar -tzf "$f" | sort | tr '\n' ' ' | grep -qx 'CHANGELOG.md LICENSE README.md supervisor '; then ok "$f"; else bad "$f: $(tar -tzf "$f" 2>&1 | tr '\n' ' ')"; fi
done
for os in linux darwin windows; do
	for arch in amd64 arm64; do
		ext=tar.gz; [ "$os" = windows ] && ext=zip
		f=dist/bastion-ttl_${version}_${os}_${arch}.$ext
		[ -s "$f" ] && ok "$f" || bad "no $f"
	done
done
for fn in terminate sweep taskroles ledger; do
	f=dist/${fn}_${version}_lambda_arm64.zip
	names=$(python3 -m zipfile -l "$f" | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
	[ "$names" = "bootstrap " ] && ok "$f: bootstrap alone" || bad "$f holds: $names"
	tmp=$(mktemp -d)
	python3 -m zipfile -e "$f" "$tmp"
	machine=$(od -An -tu2 -j18 -N2 "$tmp/bootstrap" | tr -d ' ')
	[ "$machine" = 183 ] && ok "$f: arm64" || bad "$f: ELF machine $machine, want 183 (arm64)"
	# Lambda runs the bootstrap as the zip's mode bits say (extraction here drops them).
	python3 -c 'import sys, zipfile; sys.exit(0 if zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap").external_attr >> 16 & 0o111 else 1)' "$f" \
		&& ok "$f: executable" || bad "$f: bootstrap not executable"
	rm -rf "$tmp"
done
# The IAM policy simulator (AGPL-3.0) is a test tool: no artifact carries it.
for f in dist/*.tar.gz dist/*.zip; do
	case "$f" in *.zip) names=$(python3 -m zipfile -l "$f") ;; *) names=$(tar -tzf "$f") ;; esac
	if printf '%s\n' "$names" | grep -Eq 'node_modules|iam-simulate|cloud-copilot'; then bad "$f carries the IAM simulator"; else ok "$f: no test tool"; fi
done
for f in dist/*.tar.gz dist/*.zip; do
	grep -q " $(basename "$f")$" dist/checksums.txt && ok "checksum of $(basename "$f")" || bad "no checksum of $f"
done
(cd dist && sha256sum --quiet -c checksums.txt) && ok "checksums verify" || bad "checksums do not verify"
sbom=dist/bastion-ttl_${version}_sbom.cdx.json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bomFormat"] == "CycloneDX" and any(c["name"].endswith("aws-lambda-go") for c in d["components"])' "$sbom" \
	&& ok "$sbom" || bad "$sbom is not a CycloneDX SBOM of the module"
if [ "$(go env GOARCH)" = amd64 ] || [ "$(go env GOARCH)" = arm64 ]; then
	tmp=$(mktemp -d)
	tar -xzf "dist/supervisor_${version}_linux_$(go env GOARCH).tar.gz" -C "$tmp" supervisor
	out=$("$tmp/supervisor" version)
	case "$out" in "bastion-ttl supervisor $version (commit "*) ok "supervisor version: $out" ;; *) bad "supervisor version: $out" ;; esac
	rm -rf "$tmp"
fi
exit $fail
