/**
 * The bridge guard's maps in the loaded ARP program, typed: config, port bindings, leases
 * awaiting a port (by address and by MAC), claims, per-port counters and budgets, and the event
 * ring buffer. An adapter:
 * each call is one syscall (or one dump), no policy; what to write is `plan.ts`'s call.
 *
 * @example
 * const maps = new GuardMaps(prog.maps());
 * maps.configure({ mode: 'enforce', dropIpv6: false, events: { perSecond: 20, burst: 40 } });
 * maps.putPort(7, { mac: '02:00:00:00:00:0a', ip: '10.8.64.2' });
 * maps.state().ports.get(7); // { mac: '02:00:00:00:00:0a', ip: '10.8.64.2', learned: false }
 */
import type { EventReader } from '../native.js';
import { readRecords, type BpfMaps } from '../observe/arp-program.js';
import { ifindexKey } from '../observe/arp-records.js';
import {
  GUARD_MAPS,
  encodeGuardConfig,
  encodePending,
  encodePortBinding,
  ipKey,
  macKey,
  parseClaims,
  parseGuardEvent,
  parseGuardPorts,
  parseGuardStats,
  parsePending,
  parsePendingMacs,
  type GuardConfig,
  type GuardEvent,
  type GuardStats,
  type PortBinding,
} from './guard-records.js';
import type { GuardState } from './plan.js';

/** The guard's maps. */
export class GuardMaps {
  readonly #maps: BpfMaps;

  /** Wraps the program's maps. */
  constructor(maps: BpfMaps) {
    this.#maps = maps;
  }

  /** Sets the mode, the IPv6 policy and the spoof-event budget (applies to the next frame). */
  configure(cfg: GuardConfig): void {
    this.#maps.update(GUARD_MAPS.config, ifindexKey(0), encodeGuardConfig(cfg));
  }

  /** Lets port `ifindex` send as `b` (replacing what it had, a learned binding included). */
  putPort(ifindex: number, b: PortBinding): void {
    this.#maps.update(GUARD_MAPS.ports, ifindexKey(ifindex), encodePortBinding(b));
  }

  /** Takes port `ifindex`'s binding away; false when it had none. */
  deletePort(ifindex: number): boolean {
    return this.#maps.delete(GUARD_MAPS.ports, ifindexKey(ifindex));
  }

  /** Lets an unbound port claim the lease on `ip` (with MAC `mac`, or any MAC when null). */
  putPending(ip: string, mac: string | null): void {
    this.#maps.update(GUARD_MAPS.pending, ipKey(ip), encodePending(mac));
  }

  /** The lease on `ip` no longer awaits a port; false when it did not. */
  deletePending(ip: string): boolean {
    return this.#maps.delete(GUARD_MAPS.pending, ipKey(ip));
  }

  /** Lets an unbound port's frames from `mac` claim the pending lease on `ip`. */
  putPendingMac(mac: string, ip: string): void {
    this.#maps.update(GUARD_MAPS.pendingMacs, macKey(mac), ipKey(ip));
  }

  /** Frames from `mac` no longer claim a lease by their MAC; false when they did not. */
  deletePendingMac(mac: string): boolean {
    return this.#maps.delete(GUARD_MAPS.pendingMacs, macKey(mac));
  }

  /** Forgets which port claimed `ip`; false when none had. */
  deleteClaim(ip: string): boolean {
    return this.#maps.delete(GUARD_MAPS.claims, ipKey(ip));
  }

  /** Forgets a port's counters and event budget (it left the bridge). */
  forgetPort(ifindex: number): void {
    this.#maps.delete(GUARD_MAPS.stats, ifindexKey(ifindex));
    this.#maps.delete(GUARD_MAPS.budget, ifindexKey(ifindex));
  }

  /** What the kernel holds: port bindings, leases awaiting a port, claims. */
  state(): GuardState {
    return {
      ports: parseGuardPorts(this.#maps.dump(GUARD_MAPS.ports)),
      pending: parsePending(this.#maps.dump(GUARD_MAPS.pending)),
      pendingMacs: parsePendingMacs(this.#maps.dump(GUARD_MAPS.pendingMacs)),
      claims: parseClaims(this.#maps.dump(GUARD_MAPS.claims)),
    };
  }

  /** The port that claimed the lease on `ip`, as the kernel holds it now, or null. */
  claimOf(ip: string): number | null {
    const v = this.#maps.lookup(GUARD_MAPS.claims, ipKey(ip));
    return v === null ? null : v.readUInt32LE(0);
  }

  /** Per-port counters, by ifindex. */
  stats(): Map<number, GuardStats> {
    return parseGuardStats(this.#maps.dump(GUARD_MAPS.stats));
  }

  /**
   * Reads the event ring buffer: `onEvents` gets each batch, parsed; `onBadRecord` hears of
   * records of the wrong size or kind (a header/TS mismatch).
   */
  readEvents(onEvents: (events: GuardEvent[]) => void, onBadRecord: () => void): EventReader {
    return readRecords(this.#maps, GUARD_MAPS.events, parseGuardEvent, onEvents, onBadRecord);
  }
}
