#!/usr/bin/env bash
# Builds the Dockerfile with buildah (no Docker engine needed) for amd64 and
# arm64, then checks the image: `supervisor version` runs from it, as a
# non-root user, with the right entrypoint, and it is at most 12 MB.
#
# Base images cannot be pulled on an offline machine, so the Dockerfile's Go
# base is stood in for by an image made from this machine's own toolchain
# (plus busybox for `sh`), under the exact name the Dockerfile asks for, and
# the build runs with --pull=never.
set -euo pipefail
cd "$(dirname "$0")/.."

export BUILDAH_ISOLATION=chroot
image=localhost/bastion-ttl/supervisor:image-test
max_bytes=$((12 * 1000 * 1000))
version=${VERSION:-image-test}
revision=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}

need() { command -v "$1" >/dev/null || { echo "image-test: $1 not found; install it with: $2" >&2; exit 1; }; }
need buildah "apt-get install buildah"
[ -x /bin/busybox ] || { echo "image-test: /bin/busybox not found; install it with: apt-get install busybox-static" >&2; exit 1; }

base=$(sed -n 's/^FROM --platform=\$BUILDPLATFORM \([^ ]*\) AS build$/\1/p' Dockerfile)
[ -n "$base" ] || { echo "image-test: no 'FROM --platform=\$BUILDPLATFORM <image> AS build' line in Dockerfile" >&2; exit 1; }

if ! buildah manifest inspect "$base" >/dev/null 2>&1; then
	host_arch=$(go env GOARCH)
	echo "image-test: making a stand-in for $base from $(go env GOROOT) ($(go version))"
	ctr=$(buildah from scratch)
	mnt=$(buildah mount "$ctr")
	mkdir -p "$mnt/usr/local" "$mnt/etc/ssl/certs" "$mnt/bin" "$mnt/tmp" "$mnt/go"
	chmod 1777 "$mnt/tmp"
	cp -a "$(go env GOROOT)" "$mnt/usr/local/go"
	cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/"
	cp /bin/busybox "$mnt/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ -e "$mnt/bin/$applet" ] || ln -s busybox "$mnt/bin/$applet"
	done
	buildah umount "$ctr" >/dev/null
	buildah config \
		--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--env GOPATH=/go --env GOTOOLCHAIN=local \
		--env GOPROXY="$(go env GOPROXY)" --env GOSUMDB="$(go env GOSUMDB)" \
		--workingdir /go "$ctr"
	buildah commit --quiet "$ctr" "localhost/bastion-ttl/golang-standin:$host_arch" >/dev/null
	buildah rm "$ctr" >/dev/null
	# buildah 1.28 looks the build stage's base up for the target platform,
	# not $BUILDPLATFORM; so the stand-in, like the real golang image, is a
	# manifest list, whose every entry holds this builder's own toolchain
	# (what --platform=$BUILDPLATFORM selects on a real builder).
	buildah manifest create "$base" >/dev/null
	for arch in amd64 arm64; do
		if [ "$arch" != "$host_arch" ]; then
			ctr=$(buildah from --pull=never "localhost/bastion-ttl/golang-standin:$host_arch")
			buildah config --arch "$arch" "$ctr"
			buildah commit --quiet "$ctr" "localhost/bastion-ttl/golang-standin:$arch" >/dev/null
			buildah rm "$ctr" >/dev/null
		fi
		buildah manifest add "$base" "localhost/bastion-ttl/golang-standin:$arch" >/dev/null
	done
fi

buildah rmi --force "$image" >/dev/null 2>&1 || true
buildah manifest rm "$image" >/dev/null 2>&1 || true
start=$(date +%s)
buildah build --pull=never --layers --platform linux/amd64,linux/arm64 \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" --manifest "$image" .
echo "image-test: built linux/amd64 and linux/arm64 in $(( $(date +%s) - start ))s"

fail=0
check() { # what, got, want
	if [ "$2" = "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: got '$2', want '$3'"; fail=1; fi
}

for arch in amd64 arm64; do
	ctr=$(buildah from --pull=never --arch "$arch" "$image")
	mnt=$(buildah mount "$ctr")
	user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$ctr")
	case "$user" in ""|0|0:*|root|root:*) check "$arch user" "$user" "a non-root user";; *) echo "ok   $arch user: $user";; esac
	check "$arch entrypoint" "$(buildah inspect --format '{{.OCIv1.Config.Entrypoint}}' "$ctr")" '[/supervisor]'
	check "$arch cmd" "$(buildah inspect --format '{{.OCIv1.Config.Cmd}}' "$ctr")" '[watch]'
	check "$arch label version" "$(buildah inspect --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}' "$ctr")" "$version"
	check "$arch label revision" "$(buildah inspect --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}' "$ctr")" "$revision"
	check "$arch label source" "$(buildah inspect --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.source"}}' "$ctr")" "https://github.com/bastion-ttl/bastion-ttl"
	machine=$(od -An -tu2 -j18 -N2 "$mnt/supervisor" | tr -d ' ')
	check "$arch ELF machine" "$machine" "$([ "$arch" = amd64 ] && echo 62 || echo 183)"
	size=$(du -sb "$mnt" | cut -f1)
	if [ "$size" -le "$max_bytes" ]; then echo "ok   $arch image size: $size bytes (max $max_bytes)"; else echo "FAIL $arch image size: $size bytes > $max_bytes"; fail=1; fi
	if [ "$arch" = "$(go env GOARCH)" ]; then
		# Runs as the image's user, from the image's root file system.
		out=$(buildah run "$ctr" -- /supervisor version)
		check "$arch supervisor version" "${out%% (*}" "bastion-ttl supervisor $version"
		check "$arch supervisor commit" "$(echo "$out" | sed -n 's/.*(commit \([^,]*\),.*/\1/p')" "${revision:0:12}"
	fi
	buildah umount "$ctr" >/dev/null
	buildah rm "$ctr" >/dev/null
done
exit $fail
