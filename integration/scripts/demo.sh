#!/usr/bin/env bash
# The demo: build berth, make a busybox bundle, and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /bin/busybox ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static
fi
cargo build --release -q -p berth
berth="$PWD/target/release/berth"
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap '"$berth" --root "$work/state" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for app in sh echo hostname id cat ls; do ln -s busybox "$work/bundle/rootfs/bin/$app"; done
cd "$work/bundle"
"$berth" spec
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from $(hostname), pid $$, $(id)"]
json.dump(c, open("config.json", "w"), indent=2)
PY
"$berth" --root "$work/state" run demo
