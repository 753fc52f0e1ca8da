#!/usr/bin/env bash
# Installs what the VM test (`npm run test:vm`) needs on Debian 12, on top of scripts/setup.sh:
# QEMU, the tools that build the box without loop devices or mounts (mmdebstrap, syslinux,
# mtools, dosfstools, sfdisk), and Vagrant with its libvirt provider. Idempotent; quiet when
# everything is installed. Not part of scripts/setup.sh: CI does not run VMs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/apt-install.sh \
  qemu-system-x86 qemu-utils mmdebstrap syslinux syslinux-common mtools dosfstools fdisk \
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
  dnsmasq-base iptables ebtables rsync
