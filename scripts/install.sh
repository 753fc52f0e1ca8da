#!/usr/bin/env bash
# Copies the built checkout (scripts/setup.sh) into DIR as the agent runs it: package.json, the
# CLI shim, the compiled sources, the addon, the eBPF object, the production node_modules, the
# unit and sample config (deploy/) and the README. DIR is replaced. Run it on the runner, or on a
# build machine of the same Debian 12 and Node 20 and copy DIR over (the VM test does that).
#
#   scripts/install.sh /opt/bridgeward
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: scripts/install.sh DIR}

rm -rf "$dest"
mkdir -p "$dest/dist" "$dest/bpf" "$dest/native/build/Release"
cp -a package.json package-lock.json README.md bin deploy "$dest/"
cp -a dist/src "$dest/dist/"
cp bpf/arp_observer.bpf.o "$dest/bpf/"
cp native/build/Release/bridgeward_native.node "$dest/native/build/Release/"
cp -a node_modules "$dest/"
npm prune --prefix "$dest" --omit=dev --offline --no-fund --no-audit --loglevel=error
find "$dest/node_modules" -type d -empty -delete
