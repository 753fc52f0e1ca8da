/**
 * Which mount covers a path, from the text of /proc/self/mounts. Pure.
 *
 * @example
 * coveringMount('bpf /sys/fs/bpf bpf rw 0 0\n', '/sys/fs/bpf/bridgeward') // { mountPoint: '/sys/fs/bpf', fsType: 'bpf' }
 */

/** One mount: where and which filesystem type. */
export interface MountEntry {
  /** Absolute mount point. */
  readonly mountPoint: string;
  /** Filesystem type (`bpf`, `sysfs`, ...). */
  readonly fsType: string;
}

/**
 * Parses /proc/self/mounts (octal escapes such as `\040` decoded), in mount order.
 *
 * @example parseMounts('bpf /tmp/my\\040dir bpf rw 0 0') // [{ mountPoint: '/tmp/my dir', fsType: 'bpf' }]
 */
export function parseMounts(text: string): MountEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(' ');
    if (f.length < 3 || !f[1] || !f[2]) return [];
    return [{ mountPoint: unescape(f[1]), fsType: f[2] }];
  });
}

/**
 * The mount that holds `path` (absolute, normalised): the last-mounted entry whose mount point
 * is `path` or one of its ancestors; null when none (no `/` in the list).
 *
 * @example coveringMount(text, '/sys/fs/bpf/bridgeward')?.fsType === 'bpf'
 */
export function coveringMount(text: string, path: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const m of parseMounts(text)) {
    const covers =
      m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    // Later mounts shadow earlier ones at the same or a deeper point.
    if (covers && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
