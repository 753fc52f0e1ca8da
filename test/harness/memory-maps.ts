/**
 * An in-memory stand-in for a loaded program's maps (`BpfMaps`): hash maps by name that keep
 * insertion order, a log of every write, and ring buffers the test fills. For tests of the guard's
 * shell and its ordering against the IPAM without a kernel; the kernel side has its own tests
 * (test/integration/guard-program.test.ts).
 *
 * @example
 * const maps = new MemoryMaps();
 * const guard = await BridgeGuard.start({ maps: new GuardMaps(maps), ... });
 * maps.writes; // ['update bw_guard_pending 0a084002', ...]
 */
import type { BpfMaps } from '../../src/observe/arp-program.js';
import type { MapDump } from '../../src/observe/arp-records.js';
import type { EventReader } from '../../src/native.js';

/** Maps in memory. */
export class MemoryMaps implements BpfMaps {
  /** Every write in order: `update|delete MAP KEYHEX`. */
  readonly writes: string[] = [];
  readonly #maps = new Map<string, Map<string, Buffer>>();
  readonly #rings = new Map<string, (records: Buffer[]) => void>();
  readonly #queued = new Map<string, Buffer[]>();

  /** Creates or replaces one entry. */
  update(map: string, key: Buffer, value: Buffer): void {
    this.writes.push(`update ${map} ${key.toString('hex')}`);
    this.#map(map).set(key.toString('hex'), Buffer.from(value));
  }

  /** Deletes one entry; false when there was none. */
  delete(map: string, key: Buffer): boolean {
    this.writes.push(`delete ${map} ${key.toString('hex')}`);
    return this.#map(map).delete(key.toString('hex'));
  }

  /** One entry's value, or null when there is none. */
  lookup(map: string, key: Buffer): Buffer | null {
    const v = this.#map(map).get(key.toString('hex'));
    return v ? Buffer.from(v) : null;
  }

  /** Every entry, as the addon dumps a map that is not per-CPU (4-byte keys). */
  dump(map: string): MapDump {
    const entries = [...this.#map(map)];
    return {
      keySize: 4,
      valueSize: entries[0]?.[1].length ?? 0,
      cpus: 1,
      keys: Buffer.concat(entries.map(([k]) => Buffer.from(k, 'hex'))),
      values: Buffer.concat(entries.map(([, v]) => v)),
    };
  }

  /** Reads a ring buffer the test fills with `push`; `drain` hands over what was pushed. */
  readRing(map: string, onRecords: (records: Buffer[]) => void): EventReader {
    this.#rings.set(map, onRecords);
    const drain = () => {
      const queued = this.#queued.get(map) ?? [];
      this.#queued.set(map, []);
      if (queued.length > 0) onRecords(queued);
    };
    return { drain, close: () => this.#rings.delete(map) };
  }

  /** Queues a ring-buffer record (delivered at the reader's next `drain`, or by `deliver`). */
  push(map: string, record: Buffer): void {
    this.#queued.set(map, [...(this.#queued.get(map) ?? []), record]);
  }

  /** Delivers what was pushed to `map`'s reader now, as the event loop would. */
  deliver(map: string): void {
    const queued = this.#queued.get(map) ?? [];
    this.#queued.set(map, []);
    if (queued.length > 0) this.#rings.get(map)?.(queued);
  }

  /** The entry under a hex key, or undefined. */
  get(map: string, keyHex: string): Buffer | undefined {
    return this.#map(map).get(keyHex);
  }

  #map(name: string): Map<string, Buffer> {
    let m = this.#maps.get(name);
    if (!m) this.#maps.set(name, (m = new Map()));
    return m;
  }
}
