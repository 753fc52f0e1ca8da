/**
 * Deletes the conntrack entries a node-port change made stale (see `conntrack-flows.ts`), so
 * clients reach the new backend instead of the old one or nowhere. Talks ctnetlink in-process on
 * a NETLINK_NETFILTER socket (messages in `ctnetlink.ts`): one dump of the IPv4 table, then one
 * precise delete per stale flow, in the process's network namespace. No child process: a fork
 * of the agent costs milliseconds of its event loop.
 *
 * @example
 * const conntrack = openConntrack();
 * const n = await conntrack.clear({ added: [newElement], removed: [oldElement] });
 * conntrack.close();
 */
import { networkInterfaces } from 'node:os';
import { createNetlink, FlagsGet, Protocol } from 'netlink';
import { BridgewardError } from '../errors.js';
import { netlinkErrno } from '../observe/rtnl.js';
import { staleFlows, type ElementChange, type Flow } from './conntrack-flows.js';
import { CT_DELETE, CT_GET, ctDumpRequest, encodeCtDelete, parseCtMessage } from './ctnetlink.js';

/** Dumps take long only on a huge table; a wedged request must not hold node ports forever. */
const REQUEST_TIMEOUT_MS = 5000;

/** The conntrack table of this network namespace. */
export interface Conntrack {
  /**
   * Deletes the stale flows of a change; resolves to how many were deleted.
   *
   * @throws BridgewardError KERNEL_ERROR / MISSING_PRIVILEGE when the kernel refuses.
   */
  clear(change: ElementChange): Promise<number>;
  /** Every IPv4 TCP/UDP flow now. */
  flows(): Promise<Flow[]>;
  /** Closes the socket. */
  close(): void;
}

/** Opens a ctnetlink socket (conntrack must be loaded: it is, with any NAT rule). */
export function openConntrack(): Conntrack {
  const sock = createNetlink(Protocol.NETFILTER);
  const request = async (what: string, type: number, payload: Buffer, flags = 0) => {
    try {
      const [msgs] = await sock.request(type, [payload], { flags, timeout: REQUEST_TIMEOUT_MS });
      return msgs;
    } catch (e) {
      const errno = netlinkErrno(e);
      const code = errno === 'EPERM' || errno === 'EACCES' ? 'MISSING_PRIVILEGE' : 'KERNEL_ERROR';
      throw new BridgewardError(code, `conntrack ${what}: ${(e as Error).message}`, { errno });
    }
  };
  const flows = async () =>
    (await request('dump', CT_GET, ctDumpRequest(), FlagsGet.DUMP)).flatMap(
      (m) => parseCtMessage(m.data) ?? [],
    );
  return {
    flows,
    async clear(change) {
      if (change.added.length === 0 && change.removed.length === 0) return 0;
      const stale = staleFlows(await flows(), { ...change, local: localAddresses() });
      let deleted = 0;
      for (const f of stale) {
        try {
          await request('delete', CT_DELETE, encodeCtDelete(f));
          deleted++;
        } catch (e) {
          // Gone meanwhile (it expired or closed): nothing to delete.
          if ((e as BridgewardError).details?.errno !== 'ENOENT') throw e;
        }
      }
      return deleted;
    },
    close: () => sock.socket.close(),
  };
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4') out.add(a.address);
  }
  return out;
}
