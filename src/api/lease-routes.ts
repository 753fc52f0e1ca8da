/**
 * Lease, quarantine, history and sync routes:
 *
 * - `POST /v1/leases` `{sandbox, mac?}`: allocate (idempotent) -> the lease with prefixLength
 *   and gateway;
 * - `GET /v1/leases`, `GET /v1/leases/:sandbox`; `DELETE /v1/leases/:sandbox`: release (the
 *   caller has confirmed the sandbox is gone);
 * - `GET /v1/history?ip=&sandbox=&limit=`: the event history, oldest first;
 * - `GET /v1/quarantine`; `DELETE /v1/quarantine/:ip?reason=`: operator override, recorded;
 * - `POST /v1/sync` `{sandboxes: [...]}`: the runtime's declared set (CNI GC style);
 * - `GET /v1/pool`: how the pool's addresses are used (CNI STATUS asks whether any is left).
 *
 * @example
 * startApi({ socket, log, routes: [leaseRoutes({ ipam, store, reconciler })] });
 */
import { BridgewardError } from '../errors.js';
import { formatCidr, formatIp, parseIp, parseMac } from '../net/ipv4.js';
import { SANDBOX_ID_PATTERN } from '../ipam/sandbox-id.js';
import type { PoolCounts } from '../ipam/allocator.js';
import type { IpamService } from '../ipam/service.js';
import type { Reconciler } from '../ipam/reconciler.js';
import type { Lease, LeaseStore } from '../store/types.js';
import type { ApiRoutes } from './server.js';

/** What the routes need. */
export interface LeaseRouteDeps {
  /** The IPAM service. */
  readonly ipam: IpamService;
  /** The lease store. */
  readonly store: LeaseStore;
  /** The reconciler (for sync). */
  readonly reconciler: Reconciler;
}

/** The answer to an allocation. */
export interface AllocationView {
  /** Sandbox id. */
  readonly sandbox: string;
  /** Its address. */
  readonly ip: string;
  /** Prefix length of the subnet. */
  readonly prefixLength: number;
  /** Gateway to route via. */
  readonly gateway: string;
  /** Lease generation (increments with every new owner of the address). */
  readonly generation: number;
  /** MAC, once known. */
  readonly mac: string | null;
  /** True when the sandbox already held this lease. */
  readonly existing: boolean;
}

/** The answer to a release. */
export interface ReleaseView {
  /** Sandbox id. */
  readonly sandbox: string;
  /** The address it held. */
  readonly ip: string;
  /** Generation of the ended lease. */
  readonly generation: number;
  /** True when the address was still live and went to quarantine instead of cooling. */
  readonly quarantined: boolean;
}

/** The answer to a sync. */
export interface SyncView {
  /** How many sandboxes the runtime declared. */
  readonly declared: number;
  /** Leased sandboxes the runtime no longer declares (reaped once quiet on the wire). */
  readonly undeclared: string[];
  /** Addresses re-reserved by the sweep. */
  readonly reserved: string[];
  /** Leases reaped by the sweep. */
  readonly reaped: string[];
}

/** How the pool is used right now. */
export interface PoolView extends PoolCounts {
  /** The subnet in CIDR form. */
  readonly subnet: string;
  /** The gateway. */
  readonly gateway: string;
}

const sandboxId = { type: 'string', pattern: SANDBOX_ID_PATTERN } as const;
const MAC_PATTERN = '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$';

/** Route plugin for leases, quarantine, history and sync. */
export function leaseRoutes(deps: LeaseRouteDeps): ApiRoutes {
  const { ipam, store, reconciler } = deps;
  const prefixLength = ipam.pool.subnet.prefixLength;
  const subnet = formatCidr(ipam.pool.subnet);
  return (app) => {
    app.post<{ Body: { sandbox: string; mac?: string } }>(
      '/v1/leases',
      {
        schema: {
          body: {
            type: 'object',
            required: ['sandbox'],
            additionalProperties: false,
            properties: { sandbox: sandboxId, mac: { type: 'string', pattern: MAC_PATTERN } },
          },
        },
      },
      async (req): Promise<AllocationView> => {
        const mac = req.body.mac === undefined ? null : parseMac(req.body.mac);
        const { lease, existing } = await ipam.allocate(req.body.sandbox, mac);
        return {
          sandbox: lease.sandbox,
          ip: lease.ip,
          prefixLength,
          gateway: ipam.pool.gateway,
          generation: lease.generation,
          mac: lease.mac,
          existing,
        };
      },
    );

    app.get('/v1/pool', async (): Promise<PoolView> => ({
      subnet,
      gateway: ipam.pool.gateway,
      ...(await ipam.counts()),
    }));

    app.get('/v1/leases', async (): Promise<Lease[]> => [...(await store.snapshot()).leases]);

    app.get<{ Params: { sandbox: string } }>(
      '/v1/leases/:sandbox',
      { schema: { params: { type: 'object', properties: { sandbox: sandboxId } } } },
      async (req): Promise<Lease> => {
        const lease = await store.leaseBySandbox(req.params.sandbox);
        if (!lease) {
          throw new BridgewardError(
            'UNKNOWN_SANDBOX',
            `sandbox ${req.params.sandbox} has no active lease`,
          );
        }
        return lease;
      },
    );

    app.delete<{ Params: { sandbox: string } }>(
      '/v1/leases/:sandbox',
      { schema: { params: { type: 'object', properties: { sandbox: sandboxId } } } },
      async (req): Promise<ReleaseView> => {
        const { lease, stillLive } = await ipam.release(req.params.sandbox, { by: 'api' });
        return {
          sandbox: lease.sandbox,
          ip: lease.ip,
          generation: lease.generation,
          quarantined: stillLive !== null,
        };
      },
    );

    app.get<{ Querystring: { ip?: string; sandbox?: string; limit?: number } }>(
      '/v1/history',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ip: { type: 'string' },
              sandbox: sandboxId,
              limit: { type: 'integer', minimum: 1, maximum: 100000 },
            },
          },
        },
      },
      async (req) => {
        const { sandbox, limit } = req.query;
        const ip = req.query.ip === undefined ? undefined : canonicalIp(req.query.ip);
        return store.history({ ip, sandbox, limit });
      },
    );

    app.get('/v1/quarantine', async () => [...(await store.snapshot()).quarantine]);

    app.delete<{ Params: { ip: string }; Querystring: { reason?: string } }>(
      '/v1/quarantine/:ip',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { reason: { type: 'string', maxLength: 500 } },
          },
        },
      },
      async (req) => {
        const ip = canonicalIp(req.params.ip);
        await store.clearQuarantine(ip, new Date(), {
          by: 'operator',
          ...(req.query.reason ? { note: req.query.reason } : {}),
        });
        return { ip, cleared: true };
      },
    );

    app.post<{ Body: { sandboxes: string[] } }>(
      '/v1/sync',
      {
        schema: {
          body: {
            type: 'object',
            required: ['sandboxes'],
            additionalProperties: false,
            properties: { sandboxes: { type: 'array', items: sandboxId, maxItems: 1_000_000 } },
          },
        },
      },
      async (req): Promise<SyncView> => {
        const r = await reconciler.sync(req.body.sandboxes);
        return {
          declared: new Set(req.body.sandboxes).size,
          undeclared: r.undeclared,
          reserved: r.reserved,
          reaped: r.reaped,
        };
      },
    );
  };
}

/** Parses and re-formats an address (rejecting anything but a dotted quad). */
function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}
