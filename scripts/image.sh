#!/usr/bin/env bash
# Builds the bridgeward image from this checkout's Containerfile with podman, on a machine that
# reaches no container registry: the Debian 12 base image is a rootfs made by mmdebstrap from the
# package mirror and imported, and Node comes from this host's Node 20 (binary, headers and npm)
# imported as a small image laid out like the official one. Both are built once and reused.
# Tags the result bridgeward:<package.json version> and prints its size.
#
#   scripts/image.sh            # install podman & co. (apt, idempotent), make the bases, build
#
# On a machine that reaches a registry the same Containerfile builds on its own:
#   podman build -t bridgeward:0.1.0 .   (debian:bookworm-slim and node:20-bookworm-slim)
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="$PWD/scripts/containers.conf"  # runc and explicit ulimits

scripts/apt-install.sh podman runc mmdebstrap

VERSION=$(node -p "require('./package.json').version")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Bump the suffix when the base recipe below changes (an existing tag is reused as it is).
BASE_IMAGE=localhost/bridgeward-base:bookworm-2
NODE_VERSION=$(node -p 'process.version')
NODE_IMAGE=localhost/bridgeward-node:$NODE_VERSION
work=$(mktemp -d /tmp/bw-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The base: Debian 12 minbase without documentation, man pages and locales (as bookworm-slim),
# /usr merged by mmdebstrap's hook (not by the usrmerge package, which would pull in perl).
if ! podman image exists "$BASE_IMAGE"; then
  echo "image: making $BASE_IMAGE with mmdebstrap from $MIRROR"
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/rootfs.tar" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main"
  podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$work/rootfs.tar"
fi

# Node: this host's binary, headers and npm under /usr/local, where the official image has them.
if ! podman image exists "$NODE_IMAGE"; then
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
    { echo "image: node $NODE_VERSION is older than 20" >&2; exit 1; }
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  echo "image: making $NODE_IMAGE from $prefix/bin/node, $prefix/include/node and $npm_dir"
  stage="$work/node/usr/local"
  mkdir -p "$stage/bin" "$stage/include" "$stage/lib/node_modules"
  cp "$prefix/bin/node" "$stage/bin/node"
  cp -a "$prefix/include/node" "$stage/include/node"
  cp -a "$npm_dir" "$stage/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/bin/npx"
  tar -C "$work/node" -cf "$work/node.tar" usr
  podman import "$work/node.tar" "$NODE_IMAGE" >/dev/null
  rm -rf "$work/node" "$work/node.tar"
fi

# npm reaches the registry from the build through this host's trust store when npm is set up to
# use one (a TLS-intercepting proxy's CA); it is mounted into the RUN steps, never into the image.
ca_args=()
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
  ca_args=(--volume "$cafile:/run/build-ca.crt:ro" --build-arg NPM_CAFILE=/run/build-ca.crt)
fi

echo "image: building bridgeward:$VERSION"
podman build --network host --layers \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "NODE_IMAGE=$NODE_IMAGE" \
  --build-arg "VERSION=$VERSION" "${ca_args[@]}" \
  --tag "bridgeward:$VERSION" --file Containerfile .
bytes=$(podman image inspect --format '{{.Size}}' "bridgeward:$VERSION")
echo "image: bridgeward:$VERSION is $((bytes / 1000000)) MB ($bytes bytes)"
