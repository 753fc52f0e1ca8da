/**
 * Debian's podman 4.3 (a CNI runtime) on a test bed: run inside the runner namespace
 * (`nsenter --net`, so the `bridge` plugin finds that namespace's rt0; `ip netns exec` would
 * remount /sys and hide the cgroup mounts runc needs), with runc and explicit ulimits (crun and
 * the default ulimits fail in this sandbox), its own storage and run root under `dir` (nothing
 * global is touched), the CNI config dir holding the network's conflist, and a busybox image
 * imported from a rootfs made of Debian's busybox-static (no registry is reachable; it takes
 * about a tenth of a second, so nothing is cached between runs).
 *
 * @example
 * const podman = await Podman.create(bed, net, dir);
 * await podman.run(['run', '-d', '--name', 'c1', '--network', net.name, podman.image, 'sleep', '600']);
 * await podman.cleanup();
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from '../exec.js';
import type { CniNetwork } from './cni.js';
import type { Testbed } from './testbed.js';

/** The static busybox of Debian's busybox-static package. */
const BUSYBOX = '/bin/busybox';
/** Commands the image links to busybox. */
const APPLETS = ['sh', 'sleep', 'ip', 'ping', 'cat', 'hostname'];

/** podman with its own storage, on a test bed's runner namespace. */
export class Podman {
  /** The imported image's name. */
  readonly image: string;
  readonly #bed: Testbed;
  readonly #dir: string;

  private constructor(bed: Testbed, dir: string) {
    this.#bed = bed;
    this.#dir = dir;
    this.image = `localhost/bw-${bed.id}-busybox:1`;
  }

  /** Writes the config and the conflist under `dir` and imports the image. */
  static async create(bed: Testbed, net: CniNetwork, dir: string): Promise<Podman> {
    const podman = new Podman(bed, dir);
    mkdirSync(join(dir, 'cni-conf'), { recursive: true });
    writeFileSync(join(dir, 'cni-conf', `${net.name}.conflist`), net.conflist());
    writeFileSync(
      join(dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${net.binDir}", "/usr/lib/cni"]`,
        '[engine]',
        'runtime = "runc"',
        '',
      ].join('\n'),
    );
    const rootfs = join(dir, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    await run(['cp', BUSYBOX, join(rootfs, 'bin', 'busybox')]);
    for (const applet of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', applet));
    await run(['tar', '-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.']);
    await podman.run(['import', join(dir, 'rootfs.tar'), podman.image], true);
    return podman;
  }

  /** Runs `podman ARGS` in the runner namespace; with `check`, a non-zero exit rejects. */
  run(args: readonly string[], check = false): Promise<RunResult> {
    return run(
      [
        'nsenter',
        `--net=/run/netns/${this.#bed.runnerNs}`,
        'podman',
        '--root',
        join(this.#dir, 'root'),
        '--runroot',
        join(this.#dir, 'runroot'),
        '--cni-config-dir',
        join(this.#dir, 'cni-conf'),
        ...args,
      ],
      { check, env: { CONTAINERS_CONF: join(this.#dir, 'containers.conf') }, timeoutMs: 120_000 },
    );
  }

  /** Removes every container and image of this storage and unmounts what is left. */
  async cleanup(): Promise<void> {
    await this.run(['rm', '--all', '--force', '--time', '0']);
    await this.run(['rmi', '--all', '--force']);
    await run(['umount', '--recursive', '--lazy', join(this.#dir, 'root', 'overlay')], {
      check: false,
    });
  }
}
