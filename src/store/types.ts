/**
 * The lease store: the one source of truth for leases, quarantine, node ports, identities and
 * the append-only event history. Two backends implement `LeaseStore`: SQLite (embedded default)
 * and etcd (clusters). Every mutation is one transaction in the backend; the interface offers
 * whole operations (claim, release, ...) rather than raw reads and writes so that each backend
 * can make them atomic (SQLite transactions, etcd compare-and-swap on revisions).
 *
 * @example
 * const snap = await store.snapshot();
 * const { lease } = await store.claim({ sandbox: 'app-1', ip: '10.8.64.7', mac: null, at: new Date() });
 */

/** An active lease: one sandbox owns one address. */
export interface Lease {
  /** Sandbox id (unique among active leases). */
  readonly sandbox: string;
  /** Leased address (dotted quad, unique among active leases). */
  readonly ip: string;
  /** MAC of the sandbox's interface, lowercase colon form, once known. */
  readonly mac: string | null;
  /** ifindex of the host side of the sandbox's veth (its `rt0` port), once known. */
  readonly ifindex: number | null;
  /** Name of that port, once known. */
  readonly ifname: string | null;
  /** Always 'active' for a lease returned by the store. */
  readonly state: 'active';
  /**
   * The agent (node) that allocated it, so agents sharing an etcd store reap only their own
   * leases; null when unknown (leases from before it was recorded).
   */
  readonly node?: string | null;
  /** Increments every time the address gets a new owner. */
  readonly generation: number;
  /** ISO time the lease was created. */
  readonly allocatedAt: string;
  /** ISO time the lease last changed. */
  readonly updatedAt: string;
}

/** An address released recently: preferred last until its cool-down ends. */
export interface CoolingAddress {
  /** The released address. */
  readonly ip: string;
  /** Sandbox that held it last. */
  readonly sandbox: string;
  /** Generation of that last lease. */
  readonly generation: number;
  /** ISO time of the release. */
  readonly releasedAt: string;
}

/** An address the agent refuses to hand out, with why and the evidence. */
export interface Quarantine {
  /** The quarantined address. */
  readonly ip: string;
  /** Short machine-readable reason, e.g. 'duplicate-ip', 'live-unleased', 'live-after-release'. */
  readonly reason: string;
  /** Evidence (MACs, ports, sandboxes, observation sources). */
  readonly evidence: Record<string, unknown>;
  /** ISO time the quarantine started. */
  readonly since: string;
  /** ISO time it may lift by itself, or null until cleared. */
  readonly until: string | null;
}

/** One entry of the append-only history. */
export interface LeaseEvent {
  /** Monotonic id within the store. */
  readonly id: number;
  /** ISO time. */
  readonly at: string;
  /** What happened, e.g. 'allocated', 'released', 'quarantined', 'quarantine-cleared', 'finding'. */
  readonly kind: string;
  /** Address concerned, if any. */
  readonly ip: string | null;
  /** Sandbox concerned, if any. */
  readonly sandbox: string | null;
  /** Structured details. */
  readonly detail: Record<string, unknown>;
}

/** A node port: (proto, host port) leads to (sandbox, container port). */
export interface PortMapping {
  /** Transport protocol. */
  readonly proto: 'tcp' | 'udp';
  /** Port on the runner, 1..65535. */
  readonly hostPort: number;
  /** Owning sandbox (must hold an active lease). */
  readonly sandbox: string;
  /** Port inside the sandbox, 1..65535. */
  readonly port: number;
}

/** A registered workload identity, bound to a lease. The secret is kept only as a hash. */
export interface Identity {
  /** Sandbox id. */
  readonly sandbox: string;
  /** Address of the lease it is bound to. */
  readonly ip: string;
  /** Generation of that lease; a new owner of the address never matches. */
  readonly generation: number;
  /** Hex SHA-256 of the current secret. */
  readonly secretHash: string;
  /** Optional application name. */
  readonly app: string | null;
  /** Audiences tokens may be issued for. */
  readonly audiences: readonly string[];
  /** ISO time of registration. */
  readonly createdAt: string;
  /** ISO time of the last secret rotation. */
  readonly rotatedAt: string;
}

/** A consistent view of the allocation-relevant state, read in one go. */
export interface StoreSnapshot {
  /** All active leases. */
  readonly leases: readonly Lease[];
  /** Recently released addresses, in no particular order (the caller decides which still cool). */
  readonly cooling: readonly CoolingAddress[];
  /** Active quarantine records. */
  readonly quarantine: readonly Quarantine[];
  /** The last address handed out (round-robin cursor), or null. */
  readonly cursor: string | null;
}

/** The runtime's declared sandbox set (`POST /v1/sync`), as one agent last recorded it. */
export interface Declaration {
  /** Sandboxes the runtime said exist. */
  readonly sandboxes: readonly string[];
  /** ISO time it was recorded; leases allocated later are not judged by it. */
  readonly at: string;
}

/** A request to give `ip` to `sandbox`. */
export interface ClaimRequest {
  /** Sandbox id. */
  readonly sandbox: string;
  /** Address the allocator chose. */
  readonly ip: string;
  /** MAC, if the caller knows it already. */
  readonly mac: string | null;
  /** The allocating agent's node name, when known. */
  readonly node?: string;
  /** Time of the claim. */
  readonly at: Date;
}

/** The outcome of a claim. */
export interface ClaimResult {
  /** The sandbox's lease (new, or the one it already had). */
  readonly lease: Lease;
  /** True when the sandbox already held a lease and nothing changed (idempotent allocate). */
  readonly existing: boolean;
}

/** The lease store every backend implements. */
export interface LeaseStore {
  /** Backend name for `status`. */
  readonly kind: 'sqlite' | 'etcd';

  /** Reads leases, cooling addresses, quarantine and the cursor consistently. */
  snapshot(): Promise<StoreSnapshot>;

  /**
   * Atomically gives `req.ip` to `req.sandbox`. If the sandbox already has an active lease it is
   * returned unchanged (`existing: true`). Otherwise the claim succeeds only if the address has
   * no active lease and no quarantine; the generation becomes the address's previous generation
   * plus one; the cursor moves to the address; an 'allocated' event is recorded.
   *
   * @throws BridgewardError CONFLICT when the address was taken or quarantined meanwhile.
   */
  claim(req: ClaimRequest): Promise<ClaimResult>;

  /**
   * Atomically ends the sandbox's lease: the address starts cooling, the sandbox's node ports
   * and identity are removed in the same transaction, and a 'released' event is recorded.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX when the sandbox has no active lease.
   */
  release(sandbox: string, at: Date, detail?: Record<string, unknown>): Promise<Lease>;

  /**
   * Records the MAC and/or port of a sandbox's lease once observed; `null` ends a port binding
   * (its port left the bridge). Returns the updated lease.
   */
  bind(
    sandbox: string,
    binding: { mac?: string; ifindex?: number | null; ifname?: string | null },
    at: Date,
  ): Promise<Lease>;

  /** Returns the active lease of a sandbox, or null. */
  leaseBySandbox(sandbox: string): Promise<Lease | null>;

  /** Returns the active lease on an address, or null. */
  leaseByIp(ip: string): Promise<Lease | null>;

  /** Adds or refreshes a quarantine record and records a 'quarantined' event (first time only). */
  quarantine(q: Quarantine, at: Date): Promise<void>;

  /**
   * Lifts a quarantine and records 'quarantine-cleared' with who/why in the detail.
   *
   * @throws BridgewardError UNKNOWN_ADDRESS when the address is not quarantined.
   */
  clearQuarantine(ip: string, at: Date, detail: Record<string, unknown>): Promise<void>;

  /** Appends an event to the history (findings, reconcile actions, operator actions). */
  appendEvent(e: Omit<LeaseEvent, 'id'>): Promise<void>;

  /** Reads the history, newest last, optionally filtered by address or sandbox. */
  history(filter: { ip?: string; sandbox?: string; limit?: number }): Promise<LeaseEvent[]>;

  /**
   * Replaces the declaration kept for `node` (null: the agent of an unshared store) and records
   * a 'sync' event with `detail`, in one transaction. It survives restarts, so reaping resumes
   * without waiting for the runtime's next sync.
   */
  declare(node: string | null, d: Declaration, detail: Record<string, unknown>): Promise<void>;

  /** The declaration last kept for `node`, or null when the runtime never declared one. */
  declaration(node: string | null): Promise<Declaration | null>;

  /**
   * An opaque token that changes whenever the store's content may have changed (a write by this
   * agent or by any other writer). Equal tokens mean nothing changed in between: periodic work
   * derived from the store can skip itself.
   */
  revision(): Promise<string>;

  /** All node-port mappings. */
  listPorts(): Promise<PortMapping[]>;

  /**
   * Adds or moves a node port in one transaction.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX when the sandbox has no active lease;
   *   PORT_IN_USE when (proto, hostPort) belongs to another sandbox.
   */
  putPort(m: PortMapping, at: Date): Promise<void>;

  /**
   * Removes a node port.
   *
   * @throws BridgewardError UNKNOWN_PORT when it does not exist.
   */
  removePort(proto: 'tcp' | 'udp', hostPort: number, at: Date): Promise<PortMapping>;

  /**
   * Registers or replaces a sandbox's identity (bound to its current lease).
   *
   * @throws BridgewardError UNKNOWN_SANDBOX when the sandbox has no active lease.
   */
  putIdentity(i: Identity, at: Date): Promise<void>;

  /** The identity of a sandbox, or null. */
  identity(sandbox: string): Promise<Identity | null>;

  /** Removes a sandbox's identity; returns whether one existed. */
  removeIdentity(sandbox: string, at: Date): Promise<boolean>;

  /** Closes connections and files. */
  close(): Promise<void>;
}
