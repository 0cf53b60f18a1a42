#!/usr/bin/env bash
# Offline stand-ins for the Dockerfile's two base images, for machines with
# buildah but no registry: a Debian bookworm minbase made by debootstrap, imported
# as docker.io/library/debian:bookworm-slim, and the same root file system plus
# this machine's Go toolchain as docker.io/library/golang:<go version>-bookworm.
# Images that exist already are kept. Needs root, debootstrap, buildah and
# Debian's package mirror; says which is missing and fails otherwise.
set -euo pipefail

DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
GOROOT_DIR=$(go env GOROOT)
GO_MINOR=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')
GO_IMAGE=docker.io/library/golang:${GO_MINOR}-bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# debootstrap is in /usr/sbin, which a non-login PATH (CI's) may lack.
PATH=$PATH:/usr/sbin:/sbin
fail() { echo "stand-in-bases: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and buildah's chroot isolation); run as root"
command -v buildah >/dev/null || fail "buildah is missing: apt-get install -y buildah"
command -v debootstrap >/dev/null || fail "debootstrap is missing: apt-get install -y debootstrap"

have() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# import DIR NAME [buildah config options...]: commit a root file system as an image.
import() {
	local dir=$1 name=$2; shift 2
	local ctr mnt
	ctr=$(buildah from scratch)
	mnt=$(buildah mount "$ctr")
	cp -a "$dir"/. "$mnt"/
	buildah umount "$ctr" >/dev/null
	buildah config "$@" "$ctr"
	buildah commit -q "$ctr" "$name" >/dev/null
	buildah rm "$ctr" >/dev/null
	echo "stand-in-bases: $name"
}

if have "$DEBIAN_IMAGE" && have "$GO_IMAGE"; then
	echo "stand-in-bases: $DEBIAN_IMAGE and $GO_IMAGE exist"
	exit 0
fi
work=$(mktemp -d /var/tmp/pyudf-bases.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
	tail -n 5 "$work/debootstrap.log" >&2
	fail "debootstrap of bookworm from $MIRROR failed (no network to Debian's packages?)"
fi
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
# Where this machine reaches the network through a TLS-inspecting proxy, its
# extra certificate authorities (Debian's place for local ones) go into the
# stand-ins too: the Dockerfile's ca-certificates package then trusts them,
# exactly as on a Docker host whose base images carry the same certificates.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
	mkdir -p "$work/rootfs/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
fi
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
have "$DEBIAN_IMAGE" || import "$work/rootfs" "$DEBIAN_IMAGE" --env PATH=$path --cmd bash
if ! have "$GO_IMAGE"; then
	mkdir -p "$work/rootfs/usr/local/go" "$work/rootfs/go"
	cp -a "$GOROOT_DIR"/. "$work/rootfs/usr/local/go/"
	import "$work/rootfs" "$GO_IMAGE" --env GOPATH=/go --env PATH=/go/bin:/usr/local/go/bin:$path \
		--workingdir /go --cmd bash
fi
