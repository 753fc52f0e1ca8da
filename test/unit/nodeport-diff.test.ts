// The pure node-port core: desired render, element diff, transaction text, table render, read-back.
import t from 'tap';
import { desiredElements } from '../../src/nodeport/desired.js';
import { diffElements, isEmptyDiff, renderDiff } from '../../src/nodeport/diff.js';
import type { NatElement } from '../../src/nodeport/element.js';
import { parseTableListing } from '../../src/nodeport/readback.js';
import { renderFullReplace, renderTable } from '../../src/nodeport/ruleset.js';
import { reservedPorts } from '../../src/nodeport/reserved.js';

const SPEC = { bridge: 'rt0', subnet: '10.8.64.0/24' };

const e = (proto: 'tcp' | 'udp', hostPort: number, addr: string, port: number): NatElement => ({
  proto,
  hostPort,
  addr,
  port,
});

t.test('desired elements join mappings with leases, skip lease-less ones, sort', async (t) => {
  const got = desiredElements(
    [
      { proto: 'udp', hostPort: 53, sandbox: 'dns', port: 5353 },
      { proto: 'tcp', hostPort: 6667, sandbox: 'app-2', port: 8080 },
      { proto: 'tcp', hostPort: 80, sandbox: 'gone', port: 80 },
      { proto: 'tcp', hostPort: 443, sandbox: 'app-2', port: 8443 },
    ],
    [
      { sandbox: 'app-2', ip: '10.8.64.7' },
      { sandbox: 'dns', ip: '10.8.64.9' },
    ],
  );
  t.same(got, [
    e('tcp', 443, '10.8.64.7', 8443),
    e('tcp', 6667, '10.8.64.7', 8080),
    e('udp', 53, '10.8.64.9', 5353),
  ]);
});

t.test('reserved ports: never rendered, named after what listens there', async (t) => {
  const reserved = reservedPorts({
    identityListen: { host: '10.8.64.1', port: 7123 },
    metricsListen: { host: '127.0.0.1', port: 9464 },
  });
  t.same(
    [...reserved],
    [
      ['tcp . 7123', 'the identity token server'],
      ['tcp . 9464', 'the metrics endpoint'],
    ],
  );
  t.same([...reservedPorts({ identityListen: null, metricsListen: null })], []);
  const got = desiredElements(
    [
      { proto: 'tcp', hostPort: 7123, sandbox: 'a', port: 80 },
      { proto: 'udp', hostPort: 7123, sandbox: 'a', port: 80 },
    ],
    [{ sandbox: 'a', ip: '10.8.64.2' }],
    reserved,
  );
  t.same(got, [e('udp', 7123, '10.8.64.2', 80)]);
});

t.test('diff: unchanged, added, removed, changed (delete + add)', async (t) => {
  const cur = [
    e('tcp', 80, '10.8.64.2', 80),
    e('tcp', 81, '10.8.64.2', 81),
    e('udp', 53, '10.8.64.3', 53),
  ];
  const want = [
    e('tcp', 80, '10.8.64.2', 80),
    e('udp', 53, '10.8.64.4', 53),
    e('tcp', 82, '10.8.64.5', 8),
  ];
  const d = diffElements(cur, want);
  t.same(d.remove, [e('tcp', 81, '10.8.64.2', 81), e('udp', 53, '10.8.64.3', 53)]);
  t.same(d.add, [e('udp', 53, '10.8.64.4', 53), e('tcp', 82, '10.8.64.5', 8)]);
  t.equal(
    renderDiff(d),
    'delete element ip bridgeward nodeports { tcp . 81, udp . 53 }\n' +
      'add element ip bridgeward nodeports { udp . 53 : 10.8.64.4 . 53, tcp . 82 : 10.8.64.5 . 8 }\n',
  );
});

t.test('diff: a changed port alone is a change; identical sets are empty', async (t) => {
  const d = diffElements([e('tcp', 80, '10.8.64.2', 80)], [e('tcp', 80, '10.8.64.2', 8080)]);
  t.same(d, { remove: [e('tcp', 80, '10.8.64.2', 80)], add: [e('tcp', 80, '10.8.64.2', 8080)] });
  const same = diffElements([e('tcp', 1, '10.8.64.2', 1)], [e('tcp', 1, '10.8.64.2', 1)]);
  t.ok(isEmptyDiff(same));
  t.equal(renderDiff(same), null);
  t.equal(renderDiff(diffElements([], [])), null);
  t.equal(
    renderDiff(diffElements([e('udp', 9, '10.8.64.2', 9)], [])),
    'delete element ip bridgeward nodeports { udp . 9 }\n',
  );
  t.equal(
    renderDiff(diffElements([], [e('udp', 9, '10.8.64.2', 9)])),
    'add element ip bridgeward nodeports { udp . 9 : 10.8.64.2 . 9 }\n',
  );
});

t.test('diff of 10,000 elements with one change touches one key', async (t) => {
  const cur = Array.from({ length: 10_000 }, (_, i) => e('tcp', 10_000 + i, '10.8.64.2', 80));
  const want = cur.map((x) => (x.hostPort === 15_000 ? { ...x, addr: '10.8.64.3' } : x));
  const d = diffElements(cur, want);
  t.equal(d.remove.length, 1);
  t.equal(d.add.length, 1);
  t.equal(d.add[0]?.addr, '10.8.64.3');
});

t.test('full replace: add, delete and define the table in one buffer', async (t) => {
  const script = renderFullReplace(SPEC, [e('tcp', 6667, '10.8.64.7', 8080)]);
  const lines = script.split('\n');
  t.equal(lines[0], 'table ip bridgeward {}');
  t.equal(lines[1], 'delete table ip bridgeward');
  t.match(script, /elements = \{ tcp \. 6667 : 10\.8\.64\.7 \. 8080 \}/);
  t.match(script, /type nat hook output priority -100;/, 'output hook uses -100, not dstnat');
  t.match(script, /oifname "rt0" ct status dnat ip saddr 127\.0\.0\.0\/8 masquerade/);
  t.match(script, /oifname "rt0" ct status dnat ip saddr 10\.8\.64\.0\/24 masquerade/);
  t.match(
    script,
    /iifname "rt0" ip daddr 127\.0\.0\.0\/8 ct state != \{ established, related \} drop/,
    "sandboxes cannot open connections to the runner's 127.0.0.0/8 (CVE-2020-8558)",
  );
  t.notMatch(renderTable(SPEC, []), /elements/, 'an empty map has no elements clause');
});

const LISTING = {
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'ip', name: 'bridgeward', handle: 2 } },
    {
      map: {
        family: 'ip',
        name: 'nodeports',
        table: 'bridgeward',
        type: ['inet_proto', 'inet_service'],
        handle: 4,
        map: 'ipv4_addr . inet_service',
        elem: [
          [{ concat: ['tcp', 6667] }, { concat: ['10.8.64.5', 8080] }],
          [{ concat: ['udp', 53] }, { concat: ['10.8.64.6', 5353] }],
          [{ concat: ['sctp', 9] }, { concat: ['10.8.64.6', 9] }],
        ],
      },
    },
    {
      rule: {
        family: 'ip',
        table: 'bridgeward',
        chain: 'prerouting',
        handle: 5,
        expr: [{ masquerade: null }],
      },
    },
  ],
};

t.test('read-back: elements, foreign elements, structure without handles', async (t) => {
  const l = parseTableListing(JSON.stringify(LISTING));
  t.same(l.elements, [e('tcp', 6667, '10.8.64.5', 8080), e('udp', 53, '10.8.64.6', 5353)]);
  t.equal(l.foreign, 1);
  t.notMatch(l.structure, /handle|6667|metainfo/);
  const renumbered = JSON.parse(JSON.stringify(LISTING)) as typeof LISTING;
  (renumbered.nftables[3] as { rule: { handle: number } }).rule.handle = 99;
  (renumbered.nftables[2] as { map: { elem: unknown[] } }).map.elem = [];
  t.equal(parseTableListing(JSON.stringify(renumbered)).structure, l.structure);
  const flushed = { nftables: LISTING.nftables.slice(0, 3) };
  t.not(parseTableListing(JSON.stringify(flushed)).structure, l.structure, 'a lost rule shows');
});

t.test('read-back: malformed listings are kernel errors', async (t) => {
  t.throws(() => parseTableListing('not json'), { code: 'KERNEL_ERROR' });
  t.throws(() => parseTableListing('{"x":1}'), { code: 'KERNEL_ERROR' });
});
