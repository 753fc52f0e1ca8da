/**
 * The conflict detector: a pure state machine from observations (and the active leases) to
 * findings. No I/O and no clock: every input carries its time, so presence windows and
 * hold-downs are deterministic and unit-testable.
 *
 * A *claim* is an observation that a MAC uses an address (ARP sender, neighbour entry, probe
 * answer). A claim is *present* while it was refreshed within `presenceMs` and neither its port
 * nor its MAC's bridge entry has gone. A claim made by the lease holder is *superseded* once the
 * lease is released or moves to another MAC/port (a handover): it counts again only when that
 * MAC claims the address anew (A-B-A), which is what separates a duplicate from a handover.
 * A lease's port binding counts only while that port is on the bridge (see `portUp`).
 * Per-port ARP counters (`portActivity`) feed the storm watch (`storm-watch.ts`): one
 * `arp-storm` finding per flooding port, naming the sandboxes on it. The bridge guard's reports
 * (`spoof`, `guardActivity`) feed the spoof watch (`spoof-watch.ts`): one `spoof-attempt` per
 * port and claimed address, naming the port's sandbox and the lease it collides with.
 *
 * @example
 * const d = new ConflictDetector({ subnet: parseCidr('10.8.64.0/24'), gateway: '10.8.64.1',
 *   hostMacs: ['02:00:00:00:00:01'], bridgeIfindex: 2 });
 * const changes = d.observe(
 *   { source: 'bpf', kind: 'arp-request', ip: '10.8.64.1', mac: '02:00:00:00:00:09', ifindex: 7, at: 1000 },
 *   NO_LEASES,
 * );
 * changes[0]?.finding.kind; // 'gateway-claim'
 */
import { contains, broadcastOf, isIp, parseIp, type Subnet } from '../net/ipv4.js';
import type {
  GuardActivity,
  Observation,
  ObservationSource,
  PortActivity,
  SpoofObservation,
} from '../observe/types.js';
import {
  ADDRESS_FINDING_KINDS,
  QUARANTINING_KINDS,
  type Finding,
  type FindingChange,
  type FindingKind,
} from './finding.js';
import { leaseFits, type LeaseIndex, type LeaseRef } from './lease-index.js';
import { StormWatch, type PortOwner } from './storm-watch.js';
import { SpoofWatch, type Collision } from './spoof-watch.js';

/** Options of a detector. */
export interface DetectorOptions {
  /** The sandbox subnet (the pool is its host addresses minus the gateway). */
  readonly subnet: Subnet;
  /** The gateway address; only the host may claim it. */
  readonly gateway: string;
  /** The host's own MACs (the bridge's); their claims are never conflicts. */
  readonly hostMacs: readonly string[];
  /** ifindex of the bridge itself, which is not a port (neighbour entries carry it). */
  readonly bridgeIfindex: number | null;
  /** How long a claim counts as present without a refresh (ms). Default 300 000 (FDB ageing). */
  readonly presenceMs?: number;
  /** How long a conflict must stay gone before its finding clears (ms). Default 60 000. */
  readonly holdDownMs?: number;
  /** How many cleared findings to remember. Default 1000. */
  readonly historyLimit?: number;
  /** ARP frames per second on one port from which it is a storm. Default 1000. */
  readonly stormFramesPerSecond?: number;
}

/** Defaults for the optional detector options. */
export const DETECTOR_DEFAULTS = {
  presenceMs: 300_000,
  holdDownMs: 60_000,
  historyLimit: 1000,
} as const;

interface Claim {
  readonly mac: string;
  /** Port the claim was seen on, or null when the observer did not know it. */
  port: number | null;
  readonly firstSeen: number;
  lastSeen: number;
  readonly sources: Set<ObservationSource>;
  /** The claim fitted the address's lease when it was made. */
  heldLease: boolean;
}

interface Active {
  readonly kind: FindingKind;
  readonly ip: string;
  readonly firstSeen: number;
  lastSeen: number;
  readonly macs: Set<string>;
  readonly ports: Map<number, string | null>;
  readonly sandboxes: Set<string>;
  readonly sources: Set<ObservationSource>;
  resolvedAt: number | null;
}

/** Most MACs tracked per address; a flood of spoofed MACs evicts the longest-silent claim. */
const MAX_CLAIMS_PER_IP = 64;
/** Most MACs remembered with their port, and as gone. */
const MAX_TRACKED_MACS = 65_536;
/** Most MACs, ports or sandboxes kept as evidence in one finding. */
const MAX_EVIDENCE = 32;

const CLAIM_KINDS: ReadonlySet<Observation['kind']> = new Set([
  'arp-request',
  'arp-reply',
  'arp-announce',
  'neigh',
  'probe-reply',
]);

/** The conflict detector's state machine. */
export class ConflictDetector {
  readonly #subnet: Subnet;
  readonly #gateway: string;
  readonly #hostMacs: Set<string>;
  #bridgeIfindex: number | null;
  readonly #presenceMs: number;
  readonly #holdDownMs: number;
  readonly #historyLimit: number;
  /** ip -> mac -> claim. */
  readonly #claims = new Map<string, Map<string, Claim>>();
  /** Last MAC the kernel neighbour table reported per address. */
  readonly #neighMac = new Map<string, string>();
  /** MAC -> port, from the bridge FDB and port-aware observers. */
  readonly #macPort = new Map<string, number>();
  /** MACs whose port or bridge entry went away; stale neighbour entries for them are ignored. */
  readonly #goneMacs = new Set<string>();
  readonly #portNames = new Map<number, string>();
  /** `${kind} ${ip}` -> active finding. */
  readonly #active = new Map<string, Active>();
  readonly #cleared: Finding[] = [];
  readonly #storms: StormWatch;
  readonly #spoofs: SpoofWatch;
  #now = 0;

  /** Creates a detector with no claims and no findings. */
  constructor(opts: DetectorOptions) {
    this.#subnet = opts.subnet;
    this.#gateway = opts.gateway;
    this.#hostMacs = new Set(opts.hostMacs.map((m) => m.toLowerCase()));
    this.#bridgeIfindex = opts.bridgeIfindex;
    this.#presenceMs = opts.presenceMs ?? DETECTOR_DEFAULTS.presenceMs;
    this.#holdDownMs = opts.holdDownMs ?? DETECTOR_DEFAULTS.holdDownMs;
    this.#historyLimit = opts.historyLimit ?? DETECTOR_DEFAULTS.historyLimit;
    this.#storms = new StormWatch({
      holdDownMs: this.#holdDownMs,
      ...(opts.stormFramesPerSecond === undefined
        ? {}
        : { framesPerSecond: opts.stormFramesPerSecond }),
    });
    this.#spoofs = new SpoofWatch({ holdDownMs: this.#holdDownMs });
  }

  /** Adds a MAC of the host (e.g. when the bridge's address changes). */
  addHostMac(mac: string): void {
    this.#hostMacs.add(mac.toLowerCase());
  }

  /**
   * A new bridge instance (recreated with another ifindex and MAC): its MAC is the host's too,
   * and entries carrying its ifindex are not from a port. Earlier host MACs stay host MACs.
   */
  setBridge(ifindex: number, mac: string | null): void {
    this.#bridgeIfindex = ifindex;
    if (mac) this.addHostMac(mac);
  }

  /**
   * Feeds one observation; returns the findings raised or updated by it. `leases` is the current
   * set of active leases.
   */
  observe(obs: Observation, leases: LeaseIndex): FindingChange[] {
    this.#now = Math.max(this.#now, obs.at);
    const mac = obs.mac.toLowerCase();
    if (this.#hostMacs.has(mac) || !isUnicastMac(mac)) return [];
    const port = this.#portOf(obs.ifindex);
    if (obs.kind === 'fdb') {
      if (port !== null) this.#learnPort(mac, port);
      this.#goneMacs.delete(mac);
      return [];
    }
    if (obs.kind === 'fdb-gone') return this.#macGone(mac, port, leases);
    if (!CLAIM_KINDS.has(obs.kind) || obs.ip === null || !isIp(obs.ip)) return [];
    if (!contains(this.#subnet, parseIp(obs.ip))) return [];
    const fromKernelTable = obs.source === 'netlink-neigh';
    if (fromKernelTable && this.#goneMacs.has(mac)) return [];
    if (!fromKernelTable) {
      this.#goneMacs.delete(mac);
      if (port !== null) this.#learnPort(mac, port);
    }
    this.#claim(obs.ip, mac, port, obs, leases);
    return this.#evaluate(obs.ip, leases);
  }

  /**
   * Feeds one reading of a port's ARP counters; returns the `arp-storm` finding raised or
   * updated by it, naming the sandboxes on the port (its lease binding, or a lease's MAC seen
   * there or among the reading's stations).
   */
  portActivity(a: PortActivity, leases: LeaseIndex): FindingChange[] {
    this.#now = Math.max(this.#now, a.at);
    return this.#storms.observe(a, this.#ownersOf(a, leases));
  }

  /**
   * Feeds one bridge-guard report of a frame outside its port's binding; returns the
   * `spoof-attempt` raised or updated by it, naming the sandbox whose lease is bound to the port
   * and the lease whose address (or MAC) the frame used. Never quarantines.
   */
  spoof(o: SpoofObservation, leases: LeaseIndex): FindingChange[] {
    this.#now = Math.max(this.#now, o.at);
    const bound = leases.byPort.get(o.ifindex);
    const owners = bound ? [{ sandbox: bound.sandbox, mac: bound.mac }] : [];
    return this.#spoofs.observe(o, owners, collision(o, bound, leases));
  }

  /** Feeds one reading of the bridge guard's counts on a port (rates; a clean port resolves). */
  guardActivity(a: GuardActivity): void {
    this.#now = Math.max(this.#now, a.at);
    this.#spoofs.activity(a);
  }

  /** Records a bridge port's name (a port joined or was renamed). */
  portUp(ifindex: number, name: string): void {
    this.#portNames.set(ifindex, name);
  }

  /** A port left the bridge: its claims end. Returns the resulting changes (none are raised). */
  portGone(ifindex: number, at: number, leases: LeaseIndex): FindingChange[] {
    this.#now = Math.max(this.#now, at);
    this.#portNames.delete(ifindex);
    this.#storms.portGone(ifindex, at);
    this.#spoofs.portGone(ifindex, at);
    const touched: string[] = [];
    for (const [ip, byMac] of this.#claims) {
      for (const [mac, c] of byMac) {
        if (this.#effectivePort(c) === ifindex) {
          byMac.delete(mac);
          this.#forgetMac(mac);
          touched.push(ip);
        }
      }
    }
    for (const [mac, p] of this.#macPort) {
      if (p === ifindex) {
        this.#macPort.delete(mac);
        this.#forgetMac(mac);
      }
    }
    return touched.flatMap((ip) => this.#evaluate(ip, leases));
  }

  /**
   * Advances time: expires stale claims, re-checks every address against `leases` (releases and
   * handovers) and clears findings whose hold-down has passed. Call it periodically.
   */
  tick(now: number, leases: LeaseIndex): FindingChange[] {
    this.#now = Math.max(this.#now, now);
    const ips = new Set([...this.#claims.keys(), ...[...this.#active.values()].map((a) => a.ip)]);
    const changes = [...ips].flatMap((ip) => this.#evaluate(ip, leases));
    for (const [key, a] of this.#active) {
      if (a.resolvedAt !== null && this.#now - a.resolvedAt >= this.#holdDownMs) {
        this.#active.delete(key);
        changes.push({ type: 'cleared', finding: this.#toFinding(a, this.#now) });
      }
    }
    changes.push(...this.#storms.tick(this.#now), ...this.#spoofs.tick(this.#now));
    for (const c of changes) {
      if (c.type !== 'cleared') continue;
      this.#cleared.push(c.finding);
      if (this.#cleared.length > this.#historyLimit) this.#cleared.shift();
    }
    return changes;
  }

  /** True when there is nothing for `tick` to expire, re-check or clear (no claims, no findings). */
  idle(): boolean {
    return (
      this.#claims.size === 0 &&
      this.#active.size === 0 &&
      this.#storms.idle() &&
      this.#spoofs.idle()
    );
  }

  /** Active findings, oldest first. */
  active(): Finding[] {
    return [
      ...[...this.#active.values()].map((a) => this.#toFinding(a, null)),
      ...this.#storms.active(),
      ...this.#spoofs.active(),
    ].sort((a, b) => Date.parse(a.firstSeen) - Date.parse(b.firstSeen));
  }

  /** Cleared findings remembered since start (bounded), oldest first. */
  cleared(): Finding[] {
    return [...this.#cleared];
  }

  /** The bridge port a MAC was last seen on (with its name when known), or null. */
  portOf(mac: string): { ifindex: number; name: string | null } | null {
    const ifindex = this.#macPort.get(mac.toLowerCase());
    return ifindex === undefined ? null : { ifindex, name: this.#portNames.get(ifindex) ?? null };
  }

  /** Whether an address has an active finding of a kind that quarantines it. */
  isQuarantined(ip: string): boolean {
    return [...QUARANTINING_KINDS].some((k) => this.#active.has(`${k} ${ip}`));
  }

  /**
   * The sandboxes on a reading's port: the lease bound to it, and leases whose MAC was seen
   * there or is one of the reading's stations.
   */
  #ownersOf(a: PortActivity, leases: LeaseIndex): PortOwner[] {
    const owners = new Map<string, PortOwner>();
    const bound = leases.byPort.get(a.ifindex);
    if (bound) owners.set(bound.sandbox, { sandbox: bound.sandbox, mac: bound.mac });
    const stations = new Set(a.stations ?? []);
    for (const [mac, l] of leases.byMac) {
      if (this.#macPort.get(mac) === a.ifindex || stations.has(mac)) {
        owners.set(l.sandbox, { sandbox: l.sandbox, mac });
      }
    }
    return [...owners.values()];
  }

  /** Records where a MAC is; the oldest entry goes when the table is full (spoofed floods). */
  #learnPort(mac: string, port: number): void {
    this.#macPort.delete(mac);
    this.#macPort.set(mac, port);
    if (this.#macPort.size > MAX_TRACKED_MACS) this.#macPort.delete(first(this.#macPort.keys()));
  }

  /** Marks a MAC as gone; the oldest mark goes when the set is full. */
  #forgetMac(mac: string): void {
    this.#goneMacs.delete(mac);
    this.#goneMacs.add(mac);
    if (this.#goneMacs.size > MAX_TRACKED_MACS) this.#goneMacs.delete(first(this.#goneMacs.keys()));
  }

  #portOf(ifindex: number | null): number | null {
    return ifindex === null || ifindex === this.#bridgeIfindex || ifindex <= 0 ? null : ifindex;
  }

  #claim(ip: string, mac: string, port: number | null, obs: Observation, leases: LeaseIndex) {
    let byMac = this.#claims.get(ip);
    if (!byMac) this.#claims.set(ip, (byMac = new Map()));
    const lease = leases.byIp.get(ip);
    const effectivePort = port ?? this.#macPort.get(mac) ?? null;
    const fits = lease !== undefined && this.#fits(lease, mac, effectivePort) === 'yes';
    const existing = byMac.get(mac);
    // A neighbour-table report that repeats the MAC the table already held is the kernel's state
    // changing, not a new frame from the sandbox: it refreshes a claim but does not renew it.
    const renews = obs.source !== 'netlink-neigh' || this.#neighMac.get(ip) !== mac;
    if (obs.source === 'netlink-neigh') this.#neighMac.set(ip, mac);
    if (!existing) {
      if (byMac.size >= MAX_CLAIMS_PER_IP) evictOldest(byMac);
      byMac.set(mac, {
        mac,
        port,
        firstSeen: obs.at,
        lastSeen: obs.at,
        sources: new Set([obs.source]),
        heldLease: fits,
      });
      return;
    }
    existing.lastSeen = Math.max(existing.lastSeen, obs.at);
    existing.sources.add(obs.source);
    if (port !== null) existing.port = port;
    if (renews) existing.heldLease = fits;
  }

  #macGone(mac: string, port: number | null, leases: LeaseIndex): FindingChange[] {
    const known = this.#macPort.get(mac);
    if (port !== null && known !== undefined && known !== port) return []; // it moved; still there
    this.#macPort.delete(mac);
    this.#forgetMac(mac);
    const touched: string[] = [];
    for (const [ip, byMac] of this.#claims) {
      if (byMac.delete(mac)) touched.push(ip);
    }
    return touched.flatMap((ip) => this.#evaluate(ip, leases));
  }

  /** Present, non-superseded claims on an address (expired ones are dropped). */
  #counted(ip: string, lease: LeaseRef | undefined): Claim[] {
    const byMac = this.#claims.get(ip);
    if (!byMac) return [];
    const out: Claim[] = [];
    for (const [mac, c] of byMac) {
      if (this.#now - c.lastSeen > this.#presenceMs) {
        byMac.delete(mac);
        continue;
      }
      const superseded =
        c.heldLease &&
        (lease === undefined || this.#fits(lease, c.mac, this.#effectivePort(c)) === 'no');
      if (!superseded) out.push(c);
    }
    if (byMac.size === 0) {
      this.#claims.delete(ip);
      this.#neighMac.delete(ip);
    }
    return out;
  }

  /**
   * `leaseFits`, with a lease's port binding counted only while that port is on the bridge: a
   * sandbox re-attached on a new veth (the runtime recreated the bridge, or the agent restarted
   * after a reboot) still holds its lease until the reconciler binds the new port.
   */
  #fits(lease: LeaseRef, mac: string, port: number | null): 'yes' | 'no' | 'unknown' {
    const stale = lease.ifindex !== null && !this.#portNames.has(lease.ifindex);
    return leaseFits(stale ? { ...lease, ifindex: null } : lease, mac, port);
  }

  #effectivePort(c: Claim): number | null {
    return c.port ?? this.#macPort.get(c.mac) ?? null;
  }

  /** Which conflicts hold on an address right now, with the claims involved in each. */
  #conditions(ip: string, lease: LeaseRef | undefined): Map<FindingKind, Claim[]> {
    const claims = this.#counted(ip, lease);
    const out = new Map<FindingKind, Claim[]>();
    if (claims.length === 0) return out;
    if (ip === this.#gateway) {
      out.set('gateway-claim', claims);
      return out;
    }
    const n = parseIp(ip);
    if (n === this.#subnet.network || n === broadcastOf(this.#subnet)) return out;
    const onDifferentPorts = claims.some((a, i) =>
      claims.slice(i + 1).some((b) => {
        const pa = this.#effectivePort(a);
        const pb = this.#effectivePort(b);
        return pa === null || pb === null || pa !== pb;
      }),
    );
    if (onDifferentPorts) out.set('duplicate-ip', claims);
    if (lease === undefined) {
      out.set('unleased-claim', claims);
    } else {
      const misfits = claims.filter(
        (c) => this.#fits(lease, c.mac, this.#effectivePort(c)) === 'no',
      );
      if (misfits.length) out.set('lease-mismatch', misfits);
    }
    return out;
  }

  #evaluate(ip: string, leases: LeaseIndex): FindingChange[] {
    const lease = leases.byIp.get(ip);
    const conditions = this.#conditions(ip, lease);
    const changes: FindingChange[] = [];
    for (const kind of ADDRESS_FINDING_KINDS) {
      const key = `${kind} ${ip}`;
      const claims = conditions.get(kind);
      const a = this.#active.get(key);
      if (!claims) {
        if (a && a.resolvedAt === null) a.resolvedAt = this.#now;
        continue;
      }
      if (!a) {
        const fresh: Active = {
          kind,
          ip,
          firstSeen: conflictStart(kind, claims),
          lastSeen: 0,
          macs: new Set(),
          ports: new Map(),
          sandboxes: new Set(),
          sources: new Set(),
          resolvedAt: null,
        };
        this.#merge(fresh, claims, kind === 'gateway-claim' ? undefined : lease, leases);
        this.#active.set(key, fresh);
        changes.push({ type: 'raised', finding: this.#toFinding(fresh, null) });
        continue;
      }
      a.resolvedAt = null;
      const grew = this.#merge(a, claims, kind === 'gateway-claim' ? undefined : lease, leases);
      if (grew) changes.push({ type: 'updated', finding: this.#toFinding(a, null) });
    }
    return changes;
  }

  /** Adds the claims' evidence to a finding; true when a MAC, port or sandbox was new. */
  #merge(a: Active, claims: Claim[], lease: LeaseRef | undefined, leases: LeaseIndex): boolean {
    const before = a.macs.size + a.ports.size + a.sandboxes.size;
    for (const c of claims) {
      a.lastSeen = Math.max(a.lastSeen, c.lastSeen);
      for (const s of c.sources) a.sources.add(s);
      if (a.macs.size < MAX_EVIDENCE) a.macs.add(c.mac);
      const port = this.#effectivePort(c);
      if (port !== null && (a.ports.has(port) || a.ports.size < MAX_EVIDENCE)) {
        a.ports.set(port, this.#portNames.get(port) ?? a.ports.get(port) ?? null);
      }
      const owner =
        leases.byMac.get(c.mac) ?? (port !== null ? leases.byPort.get(port) : undefined);
      if (owner && a.sandboxes.size < MAX_EVIDENCE) a.sandboxes.add(owner.sandbox);
    }
    if (lease && a.sandboxes.size < MAX_EVIDENCE) a.sandboxes.add(lease.sandbox);
    return a.macs.size + a.ports.size + a.sandboxes.size > before;
  }

  #toFinding(a: Active, clearedAt: number | null): Finding {
    const ifindexes = [...a.ports.keys()].sort((x, y) => x - y);
    return {
      id: `${a.kind}/${a.ip}/${a.firstSeen}`,
      kind: a.kind,
      ip: a.ip,
      macs: [...a.macs].sort(),
      ports: ifindexes.map((i) => a.ports.get(i) ?? `if${i}`).sort(),
      ifindexes,
      sandboxes: [...a.sandboxes].sort(),
      sources: [...a.sources].sort(),
      severity: a.kind === 'lease-mismatch' ? 'warn' : 'error',
      state: clearedAt === null ? 'active' : 'cleared',
      firstSeen: iso(a.firstSeen),
      lastSeen: iso(a.lastSeen),
      resolvedAt: a.resolvedAt === null ? null : iso(a.resolvedAt),
      clearedAt: clearedAt === null ? null : iso(clearedAt),
      quarantine: QUARANTINING_KINDS.has(a.kind),
      rates: null,
      spoof: null,
    };
  }
}

/** When a conflict began: a duplicate when its second claimer appeared, others at the first claim. */
function conflictStart(kind: FindingKind, claims: readonly Claim[]): number {
  const starts = claims.map((c) => c.firstSeen).sort((x, y) => x - y);
  return (kind === 'duplicate-ip' ? starts[1] : starts[0]) ?? 0;
}

/**
 * The lease a spoofed frame used, other than the port's own: the holder of the address it claimed,
 * else the holder of a MAC it sent from.
 */
function collision(o: SpoofObservation, own: LeaseRef | undefined, leases: LeaseIndex): Collision {
  const candidates = [
    o.ip === null ? undefined : leases.byIp.get(o.ip),
    leases.byMac.get(o.mac),
    o.senderMac === null ? undefined : leases.byMac.get(o.senderMac),
  ];
  const hit = candidates.find((l) => l !== undefined && l.sandbox !== own?.sandbox);
  return hit ? { sandbox: hit.sandbox, ip: hit.ip } : null;
}

function first(keys: IterableIterator<string>): string {
  return keys.next().value as string;
}

function evictOldest(byMac: Map<string, Claim>): void {
  let oldest: Claim | undefined;
  for (const c of byMac.values()) if (!oldest || c.lastSeen < oldest.lastSeen) oldest = c;
  if (oldest) byMac.delete(oldest.mac);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** True for a unicast, non-zero MAC in lowercase colon form. */
function isUnicastMac(mac: string): boolean {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) return false;
  if (mac === '00:00:00:00:00:00') return false;
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}
