#!/usr/bin/env bash
# `npm run test:vm`: the reboot replay in a real VM (see the README's "VM tests"). Installs the VM
# tools (scripts/setup-vm.sh), makes the box (scripts/vm-box.sh, cached) and the agent's tree
# (scripts/install.sh), starts libvirt if it is not running, brings vagrant/ up, runs the guest
# driver's `before` phase, reboots the VM (`vagrant reload`), runs `after`, checks the node port
# from this host (outside the runner), and prints one JSON summary line. Exits non-zero on any
# failed check. Everything it made is torn down on exit, also on failure or Ctrl-C: the VM, the
# box's volume, and when it started libvirt itself, the daemons, their network, pool, firewall
# chains and ip_forward. Logs: vagrant/.stage/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STAGE=$ROOT/vagrant/.stage
DOMAIN=bridgeward-vm-default
DRIVER='sudo node /opt/bridgeward/dist/test/vm/driver.js'
NODE_PORT=6667
started=$SECONDS
declare -A took

step() { echo "vm-test: $*" >&2; }
# Runs a step, timed, its output in $STAGE/NAME.log: `timed NAME CMD...`.
timed() {
  local name=$1 t=$SECONDS
  shift
  step "$name"
  if ! "$@" >"$STAGE/$name.log" 2>&1; then
    step "$name failed; the end of $STAGE/$name.log:"
    tail -n 30 "$STAGE/$name.log" >&2
    return 1
  fi
  took[$name]=$((SECONDS - t))
}

own_libvirt=0
forward_was=$(sysctl -n net.ipv4.ip_forward)
tables_before=$(nft list tables)
run_dir=$(mktemp -d /run/bw-vm-test.XXXXXX)

teardown() {
  set +e
  step "tearing down"
  (cd "$ROOT/vagrant" && timeout 300 vagrant destroy -f) >>"$STAGE/teardown.log" 2>&1
  if virsh -c qemu:///system dominfo "$DOMAIN" >/dev/null 2>&1; then
    virsh -c qemu:///system destroy "$DOMAIN"
    virsh -c qemu:///system undefine "$DOMAIN" --remove-all-storage
  fi >>"$STAGE/teardown.log" 2>&1
  for vol in $(virsh -c qemu:///system vol-list default 2>/dev/null | awk '/bridgeward/ {print $1}'); do
    virsh -c qemu:///system vol-delete --pool default "$vol" >>"$STAGE/teardown.log" 2>&1
  done
  if [ "$own_libvirt" = 1 ]; then
    for net in $(virsh -c qemu:///system net-list --name 2>/dev/null); do
      virsh -c qemu:///system net-destroy "$net"
    done >>"$STAGE/teardown.log" 2>&1
    virsh -c qemu:///system net-undefine vagrant-libvirt >>"$STAGE/teardown.log" 2>&1
    virsh -c qemu:///system pool-destroy default >>"$STAGE/teardown.log" 2>&1
    virsh -c qemu:///system pool-undefine default >>"$STAGE/teardown.log" 2>&1
    for daemon in libvirtd virtlogd; do
      [ -f "$run_dir/$daemon.pid" ] && kill "$(cat "$run_dir/$daemon.pid")"
    done
    for _ in $(seq 50); do
      pids=$(cat "$run_dir"/*.pid 2>/dev/null)
      [ -z "$pids" ] || ! kill -0 $pids 2>/dev/null && break
      sleep 0.2
    done
    remove_libvirt_chains
    sysctl -qw net.ipv4.ip_forward="$forward_was"
  fi
  rm -rf "$run_dir" "$STAGE/bridgeward" "$STAGE/bridgeward.tar" "$ROOT/vagrant/.vagrant"
}

# libvirt's NAT network leaves its LIBVIRT_* chains (and the jumps to them) behind, in
# iptables' tables, which it created when there were none.
remove_libvirt_chains() {
  local cmd table chain
  for cmd in iptables ip6tables; do
    for table in filter nat mangle; do
      for chain in $($cmd -t "$table" -S 2>/dev/null | awk '/^-N LIBVIRT_/ {print $2}'); do
        $cmd -t "$table" -S | awk -v c="$chain" '$1 == "-A" && $NF == c' | sed 's/^-A/-D/' |
          while read -r rule; do $cmd -t "$table" $rule; done
        $cmd -t "$table" -F "$chain" && $cmd -t "$table" -X "$chain"
      done
    done
  done
  nft list tables | while read -r _ family name; do
    grep -qx "table $family $name" <<<"$tables_before" && continue
    nft -j list table "$family" "$name" | grep -q '"rule"' || nft delete table "$family" "$name"
  done
}

trap teardown EXIT
trap 'exit 130' INT TERM

rm -rf "$STAGE" && mkdir -p "$STAGE"
timed setup-vm scripts/setup-vm.sh
timed build npm run --silent build:ts
timed box scripts/vm-box.sh
stage_tree() {
  scripts/install.sh "$STAGE/bridgeward"
  mkdir -p "$STAGE/bridgeward/dist/test" && cp -a dist/test/vm "$STAGE/bridgeward/dist/test/"
  tar -C "$STAGE/bridgeward" -cf "$STAGE/bridgeward.tar" .
}
timed tree stage_tree

# Hardware virtualization or QEMU's TCG (then libvirtd must not see this machine's /dev/kvm,
# which cannot run a stock kernel, or it keeps re-probing it).
if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; else accel=tcg; fi
export BRIDGEWARD_VM_ACCEL=$accel
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  step "starting virtlogd and libvirtd ($accel)"
  own_libvirt=1
  virtlogd -d -p "$run_dir/virtlogd.pid"
  if [ "$accel" = tcg ] && [ -e /dev/kvm ]; then
    unshare -m --propagation private \
      sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd -d -p "$1"' sh "$run_dir/libvirtd.pid"
  else
    libvirtd -d -p "$run_dir/libvirtd.pid"
  fi
  for _ in $(seq 100); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.2; done
fi

cd vagrant
# One phase: the guest driver's checks in $STAGE/NAME.json, then the node port from this host
# (outside the runner) in $STAGE/NAME.outside.
phase() {
  local ip t=$SECONDS
  vagrant ssh-config >"$STAGE/ssh-config"
  ip=$(awk '/HostName/ {print $2}' "$STAGE/ssh-config")
  step "$1 (guest driver)"
  ssh -F "$STAGE/ssh-config" default "$DRIVER $1" >"$STAGE/$1.json" || true
  took[$1]=$((SECONDS - t))
  nc -w 10 "$ip" "$NODE_PORT" </dev/null >"$STAGE/$1.outside" || true
}

timed up timeout --foreground 1500 vagrant up --provider libvirt
phase before
timed reboot timeout --foreground 1200 vagrant reload
phase after
took[total]=$((SECONDS - started))

timings=$(for k in "${!took[@]}"; do printf '"%s":%s,' "$k" "${took[$k]}"; done)
node - "$STAGE" "{${timings%,}}" "$accel" <<'EOF'
const fs = require('node:fs');
const [stage, timings, accel] = process.argv.slice(2);
const read = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
const phase = (name) => {
  const last = read(`${stage}/${name}.json`).trim().split('\n').pop() || '';
  try { return JSON.parse(last); } catch { return { ok: false, checks: [{ name: `${name}: no summary`, ok: false, detail: last }] }; }
};
const before = phase('before');
const after = phase('after');
const outBefore = read(`${stage}/before.outside`);
const outAfter = read(`${stage}/after.outside`);
const checks = [
  ...before.checks.map((c) => ({ ...c, name: `before: ${c.name}` })),
  { name: 'before: node port 6667 from outside the VM', ok: outBefore === 'app-1', detail: outBefore },
  ...after.checks,
  { name: 'node port 6667 from outside the VM', ok: outAfter === 'app-1', detail: outAfter },
];
const ok = checks.length > 0 && checks.every((c) => c.ok);
const { phase: _p, ok: _o, seconds: _s, checks: _c, ...measured } = after;
console.log(JSON.stringify({
  test: 'vm-reboot-replay', ok, accel, seconds: JSON.parse(timings),
  passed: checks.filter((c) => c.ok).length, failed: checks.filter((c) => !c.ok),
  checks: checks.map((c) => c.name), ...measured,
}));
process.exitCode = ok ? 0 : 1;
EOF
