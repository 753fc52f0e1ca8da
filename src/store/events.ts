/**
 * The history entries each store operation records, built in one place so both backends write
 * exactly the same events. Pure: data in, an event (without its id) out.
 *
 * @example
 * tx.event(storeEvents.allocated(at, '10.8.64.2', 'app-1', 1, null));
 */
import type { Identity, LeaseEvent, PortMapping, Quarantine } from './types.js';

/** An event before the store gives it an id. */
export type NewEvent = Omit<LeaseEvent, 'id'>;

/** Builders for the events of every store operation. */
export const storeEvents = {
  /** The runtime declared its sandbox set. */
  synced(at: string, detail: Record<string, unknown>): NewEvent {
    return { at, kind: 'sync', ip: null, sandbox: null, detail };
  },

  /** A sandbox got an address. */
  allocated(
    at: string,
    ip: string,
    sandbox: string,
    generation: number,
    mac: string | null,
  ): NewEvent {
    return { at, kind: 'allocated', ip, sandbox, detail: { generation, ...(mac ? { mac } : {}) } };
  },

  /** A lease ended, taking its ports and identity with it. */
  released(
    at: string,
    lease: { ip: string; sandbox: string; generation: number },
    removedPorts: readonly PortMapping[],
    removedIdentity: boolean,
    detail: Record<string, unknown>,
  ): NewEvent {
    return {
      at,
      kind: 'released',
      ip: lease.ip,
      sandbox: lease.sandbox,
      detail: {
        generation: lease.generation,
        ...(removedPorts.length ? { removedPorts } : {}),
        ...(removedIdentity ? { removedIdentity: true } : {}),
        ...detail,
      },
    };
  },

  /** A lease learned its MAC and/or port. */
  bound(at: string, ip: string, sandbox: string, binding: Record<string, unknown>): NewEvent {
    return { at, kind: 'bound', ip, sandbox, detail: binding };
  },

  /** An address went into quarantine. */
  quarantined(at: string, q: Quarantine): NewEvent {
    return {
      at,
      kind: 'quarantined',
      ip: q.ip,
      sandbox: null,
      detail: { reason: q.reason, evidence: q.evidence, until: q.until },
    };
  },

  /** A quarantine was lifted. */
  quarantineCleared(
    at: string,
    ip: string,
    reason: string,
    detail: Record<string, unknown>,
  ): NewEvent {
    return { at, kind: 'quarantine-cleared', ip, sandbox: null, detail: { reason, ...detail } };
  },

  /** A node port was added or moved. */
  portMapped(at: string, ip: string, m: PortMapping, previousPort: number | null): NewEvent {
    return {
      at,
      kind: 'port-mapped',
      ip,
      sandbox: m.sandbox,
      detail: {
        proto: m.proto,
        hostPort: m.hostPort,
        port: m.port,
        ...(previousPort !== null ? { previousPort } : {}),
      },
    };
  },

  /** A node port was removed. */
  portUnmapped(at: string, ip: string | null, m: PortMapping): NewEvent {
    return {
      at,
      kind: 'port-unmapped',
      ip,
      sandbox: m.sandbox,
      detail: { proto: m.proto, hostPort: m.hostPort, port: m.port },
    };
  },

  /** An identity was registered or replaced. */
  identityPut(at: string, ip: string, i: Identity, existed: boolean): NewEvent {
    return {
      at,
      kind: existed ? 'identity-updated' : 'identity-registered',
      ip,
      sandbox: i.sandbox,
      detail: { generation: i.generation, app: i.app, audiences: i.audiences },
    };
  },

  /** An identity was removed. */
  identityRemoved(at: string, ip: string, sandbox: string, generation: number): NewEvent {
    return { at, kind: 'identity-removed', ip, sandbox, detail: { generation } };
  },
};
