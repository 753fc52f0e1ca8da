#!/usr/bin/env bash
# Builds the Vagrant box the VM test runs (libvirt provider, qcow2) from Debian packages only,
# and adds it to Vagrant as `bridgeward/bookworm`. Idempotent and cached: the box is rebuilt only
# when this recipe or the host's Node changes, and added again only when Vagrant lacks it.
#
#   scripts/vm-box.sh          # prints the box file it made or found
#
# The image: Debian 12 minbase (mmdebstrap) with the cloud kernel (virtio, bridge, veth and
# nf_tables as modules, BTF), systemd, sshd, what the agent runs (ip, tc, nft, conntrack, libbpf,
# libnftables) and this host's Node 20 as /usr/local/bin/node (the guest runs the tree built here:
# same Debian 12), so nothing is compiled in the VM. A `vagrant` user with Vagrant's insecure key
# and passwordless sudo. The disk is made without loop devices or mounts: an MBR with syslinux, a
# FAT partition with the kernel and initrd, an ext4 root made by `mke2fs -d`.
set -euo pipefail
cd "$(dirname "$0")/.."

BOX_NAME=bridgeward/bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${BRIDGEWARD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bridgeward-vm}
NODE=$(command -v node)
key=$( (cat "$0"; "$NODE" --version) | sha256sum | cut -c1-12)
box="$CACHE/bridgeward-bookworm-$key.box"
mkdir -p "$CACHE"

if [ ! -f "$box" ]; then
  "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
    { echo "vm-box: $NODE is older than Node 20" >&2; exit 1; }
  pubkey=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub | head -1)
  work=$(mktemp -d /var/tmp/bw-box.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  echo "vm-box: building $box (Debian 12 from $MIRROR)"
  # Run by mmdebstrap on this host with the new root as $1, once the packages are installed.
  cat > "$work/customize.sh" <<EOF
set -e
cp '$NODE' "\$1/usr/local/bin/node"
install -D -m 0644 '$pubkey' "\$1/home/vagrant/.ssh/authorized_keys"
echo bw-runner > "\$1/etc/hostname"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' > "\$1/etc/systemd/network/50-dhcp.network"
echo 'LABEL=root / ext4 defaults,noatime 0 1' > "\$1/etc/fstab"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "\$1/etc/sudoers.d/vagrant"
echo 'UseDNS no' > "\$1/etc/ssh/sshd_config.d/vagrant.conf"
mkdir -p "\$1/var/log/journal"
chroot "\$1" useradd -M -d /home/vagrant -s /bin/bash vagrant
chroot "\$1" chown -R vagrant:vagrant /home/vagrant
chroot "\$1" systemctl enable systemd-networkd ssh
rm -rf "\$1"/var/lib/apt/lists/* "\$1"/var/cache/apt/*.bin
: > "\$1/etc/machine-id"
EOF
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --include=linux-image-cloud-amd64,systemd-sysv,udev,dbus,initramfs-tools,openssh-server \
    --include=sudo,procps,kmod,ca-certificates,iproute2,nftables,conntrack,netbase \
    --include=libbpf1,libnftables1,libelf1,zlib1g,libstdc++6,curl,jq,iputils-ping,iputils-arping \
    --customize-hook="sh $work/customize.sh \"\$1\"" \
    bookworm "$work/root" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main"

  # FAT boot partition: kernel, initrd, syslinux.
  mkfs.vfat -n BOOT -C "$work/boot.img" $((64 * 1024)) >/dev/null
  cp "$work"/root/boot/vmlinuz-* "$work/vmlinuz"
  cp "$work"/root/boot/initrd.img-* "$work/initrd.img"
  printf 'DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  APPEND %s\n' \
    'initrd=initrd.img root=LABEL=root ro console=ttyS0,115200n8 net.ifnames=0' \
    > "$work/syslinux.cfg"
  mcopy -i "$work/boot.img" "$work/vmlinuz" "$work/initrd.img" "$work/syslinux.cfg" ::
  syslinux --install "$work/boot.img"
  # ext4 root from the directory, then the disk: MBR, partition 1 (FAT, bootable), 2 (root).
  mke2fs -q -t ext4 -L root -d "$work/root" "$work/root.img" $(((4096 - 65) * 1024))k
  boot_sectors=$((64 * 2048))
  root_start=$((2048 + boot_sectors))
  truncate -s $(((root_start * 512) + $(stat -c %s "$work/root.img"))) "$work/disk.raw"
  printf 'label: dos\nstart=2048, size=%d, type=c, bootable\nstart=%d, type=83\n' \
    "$boot_sectors" "$root_start" | sfdisk -q "$work/disk.raw"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
  dd if="$work/boot.img" of="$work/disk.raw" bs=512 seek=2048 conv=notrunc,sparse status=none
  dd if="$work/root.img" of="$work/disk.raw" bs=512 seek="$root_start" conv=notrunc,sparse \
    status=none
  qemu-img convert -c -O qcow2 "$work/disk.raw" "$work/box.img"
  echo '{"provider":"libvirt","format":"qcow2","virtual_size":4}' > "$work/metadata.json"
  tar -C "$work" -cf "$box.tmp" box.img metadata.json
  mv "$box.tmp" "$box"
  find "$CACHE" -name 'bridgeward-bookworm-*.box' ! -name "${box##*/}" -delete
fi

if [ "$(cat "$CACHE/added" 2>/dev/null)" != "$key" ] ||
  ! vagrant box list 2>/dev/null | grep -q "^$BOX_NAME "; then
  vagrant box add --force --name "$BOX_NAME" "$box" >/dev/null
  echo "$key" > "$CACHE/added"
fi
echo "$box"
