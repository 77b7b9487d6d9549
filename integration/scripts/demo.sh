#!/usr/bin/env bash
# The demo: build berth, berth-shim and berth-build; import a busybox rootfs as the base
# image; build examples/hello/Dockerfile into an OCI bundle; run it with berth. Everything
# lives in a temp dir (store included) that is removed at the end. Needs root.
# PROFILE=debug uses debug builds (quicker to compile).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /bin/busybox ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static
fi
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release -q -p berth -p berth-shim -p berth-build
else
    cargo build -q -p berth -p berth-shim -p berth-build
fi
bin="$PWD/target/$profile"
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap '"$bin/berth" --root "$work/state" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# The base image: a busybox rootfs, imported into a fresh store.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for app in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$app" ] || ln -s busybox "$rootfs/bin/$app"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .
build() { "$bin/berth-build" --store "$work/store" "$@"; }
build import "$work/busybox.tar" busybox

# Build the example into a bundle, then run it.
build build --progress plain -t hello:latest --output "type=bundle,dest=$work/bundle" examples/hello
build images
cd "$work/bundle"
"$bin/berth" --root "$work/state" run demo
