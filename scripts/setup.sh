#!/usr/bin/env bash
# Installs everything bridgeward needs on Debian 12 (idempotent; quiet when already installed),
# then installs the npm dependencies and builds (TypeScript, N-API addon, eBPF objects, the
# benchmarks' C helpers).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config python3          # node-gyp toolchain for the addon and better-sqlite3
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev  # eBPF objects and the libbpf binding
  libnftables-dev nftables conntrack iptables  # node ports (libnftables in-process, nft fallback)
  iproute2 iputils-ping iputils-arping tcpdump netcat-openbsd  # namespaces, veths, test traffic
  curl                                         # identity tests: HTTP from inside sandbox namespaces
  etcd-server etcd-client                      # the etcd store backend and its tests
  arpwatch containernetworking-plugins         # benchmark peers (arpwatch, CNI host-local); CNI tests (bridge)
  iperf3                                       # bench dataplane: TCP and UDP between two sandboxes
  podman runc busybox-static                   # the CNI runtime test (podman 4.3 uses CNI; busybox image)
)

scripts/apt-install.sh "${APT_PACKAGES[@]}"

# bpffs for pinned maps (the agent also mounts it itself when it can).
if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-fund --no-audit --loglevel=error
fi
npm run --silent build
