// Which conntrack flows a node-port change makes stale, and which bridge ports need hairpin.
import t from 'tap';
import { mergeChanges, staleFlows } from '../../src/nodeport/conntrack-flows.js';
import { parseConntrack } from '../harness/conntrack-text.js';
import { hairpinPorts } from '../../src/nodeport/hairpin.js';

const DUMP = [
  // outside client -> node port, DNATed to the old backend .2
  'udp      17 29 src=10.255.0.2 dst=10.255.0.1 sport=41000 dport=5300 src=10.8.64.2 dst=10.255.0.2 sport=5353 dport=41000 [ASSURED] mark=0 use=1',
  // created while the port had no mapping: not DNATed, would shadow the new mapping
  'udp      17 29 src=10.255.0.2 dst=10.255.0.1 sport=41001 dport=5300 [UNREPLIED] src=10.255.0.1 dst=10.255.0.2 sport=5300 dport=41001 mark=0 use=1',
  // already DNATed to the new backend .3: keep
  'udp      17 29 src=10.255.0.2 dst=10.255.0.1 sport=41002 dport=5300 src=10.8.64.3 dst=10.255.0.2 sport=5353 dport=41002 mark=0 use=1',
  // the runner talking to a remote port 5300: not a node-port flow, keep
  'udp      17 29 src=10.255.0.1 dst=192.0.2.9 sport=41003 dport=5300 src=192.0.2.9 dst=10.255.0.1 sport=5300 dport=41003 mark=0 use=1',
  // TCP to the same port number: other protocol, keep
  'tcp      6 110 TIME_WAIT src=10.255.0.2 dst=10.255.0.1 sport=41004 dport=5300 src=10.8.64.2 dst=10.255.0.2 sport=5353 dport=41004 [ASSURED] mark=0 use=1',
  'icmp     1 29 src=10.255.0.2 dst=10.255.0.1 type=8 code=0 id=1 src=10.255.0.1 dst=10.255.0.2 type=0 code=0 id=1 mark=0 use=1',
  'garbage',
].join('\n');

t.test('parses TCP and UDP entries, skips the rest', async (t) => {
  const flows = parseConntrack(DUMP);
  t.equal(flows.length, 5);
  t.same(flows[0], {
    proto: 'udp',
    orig: { src: '10.255.0.2', dst: '10.255.0.1', sport: 41000, dport: 5300 },
    reply: { src: '10.8.64.2', dst: '10.255.0.2', sport: 5353, dport: 41000 },
  });
  t.equal(flows[4]?.proto, 'tcp');
});

t.test('a moved UDP mapping: old-backend and un-NATed flows go, the rest stays', async (t) => {
  const stale = staleFlows(parseConntrack(DUMP), {
    removed: [{ proto: 'udp', hostPort: 5300, addr: '10.8.64.2', port: 5353 }],
    added: [{ proto: 'udp', hostPort: 5300, addr: '10.8.64.3', port: 5353 }],
    local: new Set(['10.255.0.1', '127.0.0.1']),
  });
  t.same(
    stale.map((f) => f.orig.sport),
    [41000, 41001],
  );
});

t.test('a removed mapping only drops flows to its old backend', async (t) => {
  const stale = staleFlows(parseConntrack(DUMP), {
    removed: [{ proto: 'tcp', hostPort: 5300, addr: '10.8.64.2', port: 5353 }],
    added: [],
    local: new Set(['10.255.0.1']),
  });
  t.same(
    stale.map((f) => `${f.proto}/${f.orig.sport}`),
    ['tcp/41004'],
  );
  t.same(staleFlows(parseConntrack(DUMP), { removed: [], added: [], local: new Set() }), []);
});

t.test(
  'hairpin ports: the bound port while on the bridge, else the MAC (lease or neighbour) in the FDB',
  async (t) => {
    const view = {
      ports: () =>
        new Map([
          [11, 'veth1'],
          [12, 'veth2'],
          [13, 'veth3'],
        ]),
      portsOf: (mac: string) =>
        ({ '02:00:00:00:00:02': [12], '02:00:00:00:00:03': [13], '02:00:00:00:00:05': [99] })[
          mac
        ] ?? [],
      macOf: (ip: string) => (ip === '10.8.64.3' ? '02:00:00:00:00:03' : null),
    };
    const got = hairpinPorts(
      [
        { ip: '10.8.64.1', mac: null, ifindex: 11 },
        { ip: '10.8.64.2', mac: '02:00:00:00:00:02', ifindex: 7 }, // port 7 left the bridge
        { ip: '10.8.64.3', mac: null, ifindex: null },
        { ip: '10.8.64.4', mac: null, ifindex: null },
        { ip: '10.8.64.5', mac: '02:00:00:00:00:05', ifindex: null }, // learned on another bridge
      ],
      view,
    );
    t.same(
      [...got.found],
      [
        [11, '10.8.64.1'],
        [12, '10.8.64.2'],
        [13, '10.8.64.3'],
      ],
    );
    t.same(got.unresolved, ['10.8.64.4', '10.8.64.5']);
  },
);

t.test(
  'a burst of changes merged for one dump: every old value stale, the last new one kept',
  async (t) => {
    const e = (hostPort: number, addr: string) => ({
      proto: 'udp' as const,
      hostPort,
      addr,
      port: 53,
    });
    const a = e(5300, '10.8.64.2');
    const b = e(5300, '10.8.64.3');
    const c = e(5301, '10.8.64.4');
    // add a; move to b; add c then remove c again
    let m = mergeChanges({ added: [a], removed: [] }, { added: [b], removed: [a] });
    m = mergeChanges(m, { added: [c], removed: [] });
    m = mergeChanges(m, { added: [], removed: [c] });
    t.same(m, { added: [b], removed: [a, c] });
    const flows = parseConntrack(
      [
        'udp 17 29 src=10.255.0.2 dst=10.255.0.1 sport=4100 dport=5300 src=10.8.64.2 dst=10.255.0.2 sport=53 dport=4100 mark=0 use=1',
        'udp 17 29 src=10.255.0.2 dst=10.255.0.1 sport=4101 dport=5300 src=10.8.64.3 dst=10.255.0.2 sport=53 dport=4101 mark=0 use=1',
        'udp 17 29 src=10.255.0.2 dst=10.255.0.1 sport=4102 dport=5301 src=10.8.64.4 dst=10.255.0.2 sport=53 dport=4102 mark=0 use=1',
      ].join('\n'),
    );
    t.same(
      staleFlows(flows, { ...m, local: new Set(['10.255.0.1']) }).map((f) => f.orig.sport),
      [4100, 4102],
      'flows to a and c go; the flow to b, the value now, stays',
    );
  },
);
