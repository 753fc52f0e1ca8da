/**
 * rtnetlink adapter over the `netlink` package: one socket for dumps and requests, another for
 * event subscriptions (so a dump never interleaves with notifications). Requests on the dump
 * socket run one at a time (the kernel answers a second dump on a socket with EBUSY while one is
 * in progress). When the kernel drops notifications (ENOBUFS) the subscriber is told to re-dump.
 * Turns netlink messages into plain typed records; no policy lives here.
 *
 * @example
 * const rtnl = openRtnl();
 * const links = await rtnl.links();
 * rtnl.close();
 */
import { createRtNetlink, rt, type NetlinkMessage, type RtNetlinkSocket } from 'netlink';
import { BridgewardError, isBridgewardError } from '../errors.js';
import { formatMac } from '../net/ipv4.js';

/** A network interface as the agent cares about it. */
export interface LinkInfo {
  /** ifindex. */
  readonly index: number;
  /** Interface name. */
  readonly name: string;
  /** rtnetlink kind (`bridge`, `veth`, ...) or null for none. */
  readonly kind: string | null;
  /** ifindex of the bridge this link is a port of, or null. */
  readonly master: number | null;
  /** Hardware address (lowercase colon form), or null. */
  readonly mac: string | null;
  /** Administratively up. */
  readonly up: boolean;
}

/** An IPv4 address assigned to an interface. */
export interface AddressInfo {
  /** ifindex of the interface. */
  readonly index: number;
  /** Dotted quad. */
  readonly ip: string;
  /** Prefix length. */
  readonly prefixLength: number;
}

/** rtnetlink multicast groups the agent subscribes to. */
export type RtnlGroup = 'LINK' | 'NEIGH' | 'IPV4_IFADDR';

/** A notification from the event socket. */
export type RtnlEvent =
  | { readonly type: 'link'; readonly deleted: boolean; readonly link: LinkInfo }
  | { readonly type: 'address'; readonly deleted: boolean; readonly address: AddressInfo }
  | { readonly type: 'other'; readonly deleted: boolean; readonly message: rt.Message };

const AF_INET = 2;
const AF_BRIDGE = 7;
/** Receive buffer of the event socket: large, so bursts rarely overrun it (ENOBUFS). */
const EVENT_RCVBUF = 4 << 20;
const DUMP_RCVBUF = 1 << 20;
const SOCKET_SNDBUF = 64 << 10;
const IFLA_INFO_KIND = 1;

/** Dump/request socket plus an optional event socket. */
export interface Rtnl {
  /** All links. */
  links(): Promise<LinkInfo[]>;
  /** All IPv4 addresses. */
  addresses(): Promise<AddressInfo[]>;
  /** The neighbour table of a family: the ARP table (`inet`) or the bridge FDB (`bridge`). */
  neighbours(family: 'inet' | 'bridge'): Promise<rt.NeighborMessage[]>;
  /**
   * Adds an IPv4 address to an interface. Idempotent: resolves to `exists` when the kernel
   * already has it (EEXIST), so a concurrent add by someone else is not an error.
   */
  addAddress(index: number, ip: string, prefixLength: number): Promise<'added' | 'exists'>;
  /**
   * Subscribes to groups on the event socket. `onEvent` gets every notification; `onOverrun` is
   * called when the kernel dropped notifications (ENOBUFS): the caller must re-dump.
   * Returns an unsubscribe function.
   */
  subscribe(
    groups: readonly RtnlGroup[],
    onEvent: (e: RtnlEvent) => void,
    onOverrun: () => void,
  ): () => void;
  /** Closes both sockets. */
  close(): void;
}

/** Opens the dump socket; the event socket is opened on the first `subscribe`. */
export function openRtnl(): Rtnl {
  const dump = createRtNetlink({ recvBufferSize: DUMP_RCVBUF, sendBufferSize: SOCKET_SNDBUF });
  let events: RtNetlinkSocket | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs requests on the dump socket one at a time. */
  const request = <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const next = queue.then(
      () => wrap(what, f),
      () => wrap(what, f),
    );
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    async links() {
      const msgs = await request('dump links', () => dump.getLinks());
      return msgs.map(toLink);
    },
    async addresses() {
      const msgs = await request('dump addresses', () => dump.getAddresses({ family: AF_INET }));
      return msgs.flatMap((m) => {
        const a = toAddress(m);
        return a ? [a] : [];
      });
    },
    async addAddress(index, ip, prefixLength) {
      const bytes = Buffer.from(ip.split('.').map(Number));
      try {
        await request(`add address ${ip}/${prefixLength}`, () =>
          dump.newAddress(
            { family: AF_INET, prefixlen: prefixLength, index },
            { address: bytes, local: bytes },
          ),
        );
        return 'added';
      } catch (e) {
        if (isBridgewardError(e) && e.details?.errno === 'EEXIST') return 'exists';
        throw e;
      }
    },
    neighbours(family) {
      return request(`dump ${family === 'inet' ? 'neighbours' : 'bridge FDB'}`, () =>
        dump.getNeighbors({ family: family === 'inet' ? AF_INET : AF_BRIDGE }),
      );
    },
    subscribe(groups, onEvent, onOverrun) {
      if (!events)
        events = createRtNetlink({
          ref: true,
          recvBufferSize: EVENT_RCVBUF,
          sendBufferSize: SOCKET_SNDBUF,
        });
      const sock = events;
      for (const g of groups) sock.addMembership(g);
      // Raw messages keep the netlink type, which tells NEW from DEL.
      const onMessage = (msgs: NetlinkMessage[]) => {
        for (const m of msgs) {
          if (m.type < rt.MessageType.NEWLINK) continue; // NOOP/ERROR/DONE
          let parsed: rt.Message;
          try {
            parsed = rt.parseMessage(m.type, m.data);
          } catch {
            continue; // a message type this adapter does not parse
          }
          onEvent(toEvent(parsed, DELETE_TYPES.has(m.type)));
        }
      };
      const onError = (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOBUFS') onOverrun();
      };
      sock.socket.on('message', onMessage);
      sock.socket.on('error', onError);
      return () => {
        sock.socket.off('message', onMessage);
        sock.socket.off('error', onError);
      };
    },
    close() {
      dump.socket.close();
      events?.socket.close();
      events = null;
    },
  };
}

const DELETE_TYPES = new Set<number>([
  rt.MessageType.DELLINK,
  rt.MessageType.DELADDR,
  rt.MessageType.DELNEIGH,
]);

function toEvent(m: rt.Message, deleted: boolean): RtnlEvent {
  if (m.kind === 'link') return { type: 'link', deleted, link: toLink(m as rt.LinkMessage) };
  if (m.kind === 'address') {
    const address = toAddress(m as rt.AddressMessage);
    if (address) return { type: 'address', deleted, address };
  }
  return { type: 'other', deleted, message: m };
}

function toLink(m: rt.LinkMessage): LinkInfo {
  const attrs = m.attrs as {
    ifname?: string;
    address?: Buffer;
    master?: number;
    linkinfo?: Buffer;
  };
  return {
    index: m.data.index ?? 0,
    name: attrs.ifname ?? '',
    kind: attrs.linkinfo ? linkKind(attrs.linkinfo) : null,
    master: attrs.master ?? null,
    mac: attrs.address && attrs.address.length === 6 ? formatMac(attrs.address) : null,
    up: Boolean(m.data.flags?.up),
  };
}

function toAddress(m: rt.AddressMessage): AddressInfo | null {
  const attrs = m.attrs as { local?: Buffer; address?: Buffer };
  const bytes = attrs.local ?? attrs.address;
  if (m.data.family !== AF_INET || !bytes || bytes.length !== 4) return null;
  return {
    index: m.data.index ?? 0,
    ip: Array.from(bytes).join('.'),
    prefixLength: m.data.prefixlen ?? 32,
  };
}

/** Reads IFLA_INFO_KIND from a raw IFLA_LINKINFO payload. */
function linkKind(buf: Buffer): string | null {
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > buf.length) return null;
    if (type === IFLA_INFO_KIND)
      return buf.toString('utf8', off + 4, off + len).replace(/\0+$/, '');
    off += (len + 3) & ~3;
  }
  return null;
}

/**
 * The errno name of a failed netlink request (the `netlink` package reports it only in the
 * message, as `Request rejected: EEXIST`), or null.
 *
 * @example netlinkErrno(new Error('Request rejected: ENODEV')); // 'ENODEV'
 */
export function netlinkErrno(e: unknown): string | null {
  const err = e as NodeJS.ErrnoException;
  if (typeof err.code === 'string') return err.code;
  return /Request rejected: (E[A-Z0-9]+)/.exec(err.message ?? '')?.[1] ?? null;
}

async function wrap<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const errno = netlinkErrno(e);
    const message = (e as Error).message;
    if (errno === 'EPERM' || errno === 'EACCES') {
      throw new BridgewardError(
        'MISSING_PRIVILEGE',
        `netlink ${what}: ${message} (needs CAP_NET_ADMIN)`,
        { errno },
      );
    }
    throw new BridgewardError('KERNEL_ERROR', `netlink ${what}: ${message}`, { errno });
  }
}
