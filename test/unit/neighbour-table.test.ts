// Neighbour messages -> entries -> tables -> live evidence and observations.
import t from 'tap';
import type { rt } from 'netlink';
import {
  NeighbourTables,
  parseNeighbourMessage,
  toObservation,
  type ArpEntry,
  type FdbEntry,
} from '../../src/observe/neighbour-table.js';
import { parseCidr } from '../../src/net/ipv4.js';

const BR = 4;
const NOW = 1_000_000;
const mac = (n: number) => Buffer.from([2, 0, 0, 0, 0, n]);

function arp(
  ip: string,
  state: rt.NeighborState,
  lladdr: Buffer | null = mac(1),
  ifindex = BR,
): rt.NeighborMessage {
  return {
    kind: 'neighbor',
    data: { family: 2, ifindex, state, flags: {} },
    attrs: {
      dst: Buffer.from(ip.split('.').map(Number)),
      lladdr: lladdr ?? undefined,
      cacheInfo: { confirmed: 150, used: 0, updated: 0, refcnt: 0 },
    },
  } as rt.NeighborMessage;
}
function fdb(
  port: number,
  lladdr: Buffer,
  state: rt.NeighborState = { reachable: true },
  flags: rt.NeighborFlags = {},
): rt.NeighborMessage {
  return {
    kind: 'neighbor',
    data: { family: 7, ifindex: port, state, flags },
    attrs: { lladdr, master: BR },
  } as rt.NeighborMessage;
}
const parse = (m: rt.NeighborMessage, deleted = false) =>
  parseNeighbourMessage(m, deleted, NOW) as ArpEntry | FdbEntry;

t.test('parses ARP and FDB entries; ignores bridge-local FDB and IPv6', async (t) => {
  t.same(parse(arp('10.8.64.2', { reachable: true })), {
    type: 'arp',
    ifindex: BR,
    ip: '10.8.64.2',
    mac: '02:00:00:00:00:01',
    state: 'reachable',
    confirmedAt: NOW - 1500,
    deleted: false,
  });
  t.same(parse(fdb(7, mac(1))), {
    type: 'fdb',
    port: 7,
    master: BR,
    mac: '02:00:00:00:00:01',
    deleted: false,
  });
  t.equal(parseNeighbourMessage(fdb(7, mac(1), { permanent: true }), false, NOW), null);
  t.equal(
    parseNeighbourMessage(fdb(BR, mac(1), { reachable: true }, { self: true }), false, NOW),
    null,
  );
  const v6 = {
    ...arp('10.8.64.2', { reachable: true }),
    data: { family: 10, ifindex: BR },
  } as rt.NeighborMessage;
  t.equal(parseNeighbourMessage(v6, false, NOW), null);
  t.equal((parse(arp('10.8.64.9', { failed: true }, null)) as ArpEntry).state, 'dead');
});

t.test('live: confirmed entries count; STALE only while the MAC is on a port', async (t) => {
  const tables = new NeighbourTables(BR, parseCidr('10.8.64.0/24'));
  tables.apply(parse(arp('10.8.64.2', { reachable: true })));
  tables.apply(parse(arp('10.8.64.3', { stale: true }, mac(3))));
  tables.apply(parse(arp('10.8.64.4', { stale: true }, mac(4))));
  tables.apply(parse(arp('10.8.64.5', { incomplete: true }, null)));
  t.equal(tables.apply(parse(arp('10.9.0.2', { reachable: true }))), false, 'outside the subnet');
  t.equal(
    tables.apply(parse(arp('10.8.64.6', { reachable: true }, mac(6), 99))),
    false,
    'another interface',
  );
  tables.apply(parse(fdb(8, mac(3))));
  const live = tables.live();
  t.same([...live.keys()].sort(), ['10.8.64.2', '10.8.64.3']);
  t.same(live.get('10.8.64.3'), {
    ip: '10.8.64.3',
    macs: ['02:00:00:00:00:03'],
    ifindexes: [8],
    sources: ['netlink-neigh', 'netlink-fdb'],
    lastSeen: NOW - 1500,
  });
  tables.apply(parse(fdb(8, mac(3)), true));
  t.same([...tables.live().keys()], ['10.8.64.2'], 'port gone: the stale entry no longer counts');
  tables.apply(parse(arp('10.8.64.2', { reachable: true }), true));
  t.same([...tables.live().keys()], [], 'deleted');
});

t.test('observations', async (t) => {
  t.match(toObservation(parse(arp('10.8.64.2', { reachable: true })), 5), {
    source: 'netlink-neigh',
    kind: 'neigh',
    ip: '10.8.64.2',
    mac: '02:00:00:00:00:01',
    at: 5,
  });
  t.match(toObservation(parse(arp('10.8.64.2', { reachable: true }), true), 5), {
    kind: 'neigh-gone',
  });
  t.match(toObservation(parse(fdb(8, mac(3))), 5), {
    source: 'netlink-fdb',
    kind: 'fdb',
    ip: null,
    ifindex: 8,
  });
  t.match(toObservation(parse(fdb(8, mac(3)), true), 5), { kind: 'fdb-gone' });
  t.equal(toObservation(parse(arp('10.8.64.5', { incomplete: true }, null)), 5), null);
});
