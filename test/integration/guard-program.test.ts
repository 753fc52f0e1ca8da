// The bridge guard inside the tc program, under BPF_PROG_TEST_RUN on crafted frames: verdicts,
// counters, events, learning from a first frame, and that a dropped ARP frame is not recorded.
// Loads unpinned maps and attaches nothing (no network objects are created). Two "ports": the
// loopback and another device of this namespace (the program only keys its maps by ifindex).
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { ArpProgram } from '../../src/observe/arp-program.js';
import { GuardMaps } from '../../src/guard/guard-maps.js';
import {
  ZERO_GUARD_STATS,
  type GuardEvent,
  type GuardMode,
} from '../../src/guard/guard-records.js';
import { buildProbe } from '../../src/net/arp.js';
import { arpRequest, ipv4Frame, ipv6Frame, otherFrame } from '../harness/frames.js';

const PASS = -1; // TC_ACT_UNSPEC
const DROP = 2; // TC_ACT_SHOT
const P1 = 1;
const P2 = otherIfindex();
const A = '02:aa:00:00:00:01';
const B = '02:bb:00:00:00:02';
const IP_A = '10.8.64.2';
const IP_B = '10.8.64.3';
const GW = '10.8.64.1';

/** An ifindex of this namespace other than the loopback (BPF_PROG_TEST_RUN wants a real one). */
function otherIfindex(): number {
  for (const name of readdirSync('/sys/class/net')) {
    const i = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'));
    if (i > 1) return i;
  }
  throw new Error('this namespace has no device but the loopback');
}

const arp = arpRequest;

function udp(mac: string, src: string, over: { vlan?: number } = {}): Buffer {
  return ipv4Frame({ ethSrc: mac, src, dst: GW, ...over });
}

/** A fresh program with the guard in `mode`; its guard events are collected. */
function setup(t: Test, mode: GuardMode, dropIpv6 = false) {
  const prog = ArpProgram.load(null);
  const maps = new GuardMaps(prog.maps());
  maps.configure({ mode, dropIpv6, events: { perSecond: 0, burst: 1 } });
  const events: GuardEvent[] = [];
  const reader = maps.readEvents(
    (e) => events.push(...e),
    () => t.fail('a guard event of the wrong size'),
  );
  t.teardown(() => {
    reader.close();
    prog.close();
  });
  const verdict = (frame: Buffer, port = P1) => prog.testRun(frame, port);
  const stats = (port = P1) => maps.stats().get(port) ?? ZERO_GUARD_STATS;
  const settle = async (n: number) => {
    for (let i = 0; i < 100 && events.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 30));
    return events;
  };
  return { prog, maps, events, verdict, stats, settle };
}

t.test('off: every frame passes and nothing is counted', async (t) => {
  const { verdict, stats, maps } = setup(t, 'off');
  maps.putPort(P1, { mac: A, ip: IP_A });
  t.equal(verdict(udp(B, IP_B)), PASS, 'even a spoofed source');
  t.equal(verdict(arp(B, GW)), PASS);
  t.same(stats(), ZERO_GUARD_STATS);
});

t.test(
  'enforce on a bound port: its own traffic passes, every kind of spoof is dropped',
  async (t) => {
    const { prog, verdict, stats, settle, maps } = setup(t, 'enforce');
    maps.putPort(P1, { mac: A, ip: IP_A });
    const legit: [string, Buffer][] = [
      ['IPv4 from its address', udp(A, IP_A)],
      ['IPv4 to a broadcast address', ipv4Frame({ ethSrc: A, src: IP_A, dst: '10.8.64.255' })],
      ['an ARP request', arp(A, IP_A)],
      ['an ARP reply', arp(A, IP_A, { op: 'reply', ethDst: B, targetMac: B, targetIp: IP_B })],
      ['a gratuitous ARP', arp(A, IP_A, { targetIp: IP_A })],
      ['an RFC 5227 probe', buildProbe(A, IP_B)],
      ['IPv6', ipv6Frame(A)],
      ['another ethertype', otherFrame(A, 0x88cc)],
      ['tagged IPv4 from its address', udp(A, IP_A, { vlan: 7 })],
    ];
    for (const [what, frame] of legit) t.equal(verdict(frame), PASS, `${what} passes`);
    t.same(stats(), ZERO_GUARD_STATS, 'nothing counted');

    const spoofs: [string, Buffer, string][] = [
      ['IPv4 from another address', udp(A, IP_B), 'ip-source'],
      ['IPv4 from 0.0.0.0 (a DHCP client)', udp(A, '0.0.0.0'), 'ip-source'],
      ['tagged IPv4 from another address', udp(A, IP_B, { vlan: 7 }), 'ip-source'],
      ['IPv4 from another MAC', udp(B, IP_A), 'mac'],
      ['IPv6 from another MAC', ipv6Frame(B), 'mac'],
      ['ARP with another sender MAC', arp(A, IP_A, { senderMac: B }), 'arp-mac'],
      ['ARP claiming the gateway', arp(A, GW, { targetIp: GW }), 'arp-ip'],
      ['a probe from another MAC', buildProbe(B, IP_B), 'mac'],
      ['an ARP reply of a reserved opcode', arp(A, IP_A).fill(3, 21, 22), 'malformed'],
    ];
    for (const [what, frame] of spoofs) t.equal(verdict(frame), DROP, `${what}: dropped`);
    t.match(stats(), { dropped: spoofs.length, wouldDrop: 0, events: spoofs.length, limited: 0 });
    const events = await settle(spoofs.length);
    t.same(
      events.map((e) => e.reason),
      spoofs.map((s) => s[2]),
      'one event per frame, with its reason',
    );
    t.match(events[0], {
      kind: 'spoof',
      ifindex: P1,
      ip: IP_B,
      targetIp: GW,
      dropped: true,
      ethSrc: A,
      senderMac: null,
      ethertype: 0x0800,
    });
    t.match(events[6], { ip: GW, senderMac: A, ethertype: 0x0806 });
    t.notOk(
      prog.bindings().some((b) => b.ip === GW),
      'a dropped ARP frame is not recorded as a binding',
    );
  },
);

t.test('monitor: the same frames pass, counted as would-drop and reported', async (t) => {
  const { prog, verdict, stats, settle, maps } = setup(t, 'monitor');
  maps.putPort(P1, { mac: A, ip: IP_A });
  t.equal(verdict(udp(A, IP_B)), PASS);
  t.equal(verdict(arp(A, GW, { targetIp: GW })), PASS);
  t.equal(verdict(udp(A, IP_A)), PASS);
  t.match(stats(), { dropped: 0, wouldDrop: 2, events: 2 });
  t.match(await settle(2), [
    { reason: 'ip-source', dropped: false },
    { reason: 'arp-ip', dropped: false },
  ]);
  t.ok(
    prog.bindings().some((b) => b.ip === GW),
    'an ARP frame that passed is recorded (it is on the wire)',
  );
});

t.test('a port without a binding nor a lease to claim: RFC 5227 probes only', async (t) => {
  const { verdict, stats } = setup(t, 'enforce');
  t.equal(verdict(buildProbe(B, IP_B), P2), PASS, 'an RFC 5227 probe passes');
  t.equal(verdict(ipv6Frame(B), P2), DROP, 'IPv6 is dropped');
  t.equal(verdict(udp(B, IP_B), P2), DROP, 'IPv4 is dropped');
  t.equal(verdict(arp(B, IP_B), P2), DROP, 'ARP is dropped');
  t.equal(verdict(otherFrame(B, 0x88cc), P2), DROP, 'another ethertype is dropped');
  t.equal(
    verdict(buildProbe(B, IP_B).fill(0xcc, 22, 28), P2),
    DROP,
    'a probe whose sender MAC is not its source',
  );
  t.match(stats(P2), { dropped: 5 });
});

t.test('--guard-ipv6 drop: IPv6 is a violation on every port', async (t) => {
  const { verdict, stats, settle, maps } = setup(t, 'enforce', true);
  maps.putPort(P1, { mac: A, ip: IP_A });
  t.equal(verdict(ipv6Frame(A)), DROP, 'from a bound port');
  t.equal(verdict(ipv6Frame(B), P2), DROP, 'from an unbound one');
  t.equal(verdict(udp(A, IP_A)), PASS, 'IPv4 is unaffected');
  t.match(stats(), { dropped: 1 });
  t.match(await settle(2), [{ reason: 'ipv6', ethertype: 0x86dd }, { reason: 'ipv6' }]);
});

t.test('a lease awaiting its port is claimed by the first port that uses it', async (t) => {
  const { verdict, stats, settle, maps, events } = setup(t, 'enforce');
  maps.putPending(IP_A, A);
  t.equal(verdict(udp(B, IP_A), P2), DROP, 'another MAC cannot claim a lease that names one');
  t.equal(verdict(arp(A, IP_A), P1), PASS, 'its MAC claims it with its first frame (ARP)');
  t.equal(verdict(udp(A, IP_A), P1), PASS, 'and goes on');
  t.equal(verdict(udp(A, IP_A), P2), DROP, 'the same MAC on a second port is refused');
  t.match(maps.state().ports.get(P1), { mac: A, ip: IP_A, learned: true }, 'a learned binding');
  t.equal(maps.state().claims.get(IP_A), P1, 'the claim');
  t.equal(verdict(udp(A, IP_B), P1), DROP, 'the claiming port is bound now: one lease per port');
  t.match(stats(P1), { learned: 1, dropped: 1 });
  await settle(4);
  t.match(
    events.filter((e) => e.kind === 'learn'),
    [{ ifindex: P1, ip: IP_A, ethSrc: A, senderMac: A, dropped: false }],
    'one learn event',
  );

  maps.putPending(IP_B, null);
  t.equal(verdict(udp(B, IP_B), P2), PASS, 'a lease that names no MAC: any MAC, from IPv4');
  t.match(maps.state().ports.get(P2), { mac: B, ip: IP_B, learned: true });
  t.equal(verdict(udp(A, IP_B), P2), DROP, 'bound to the MAC of that first frame');
});

t.test('a leased sandbox that speaks IPv6 first is bound by that frame (its MAC)', async (t) => {
  const { verdict, maps, settle } = setup(t, 'enforce');
  maps.putPending(IP_A, A);
  maps.putPendingMac(A, IP_A);
  t.equal(verdict(ipv6Frame(B), P2), DROP, 'not from another MAC');
  t.equal(verdict(ipv6Frame(A), P1), PASS, 'from its MAC: passes and claims the lease');
  t.match(maps.state().ports.get(P1), { mac: A, ip: IP_A, learned: true });
  t.equal(verdict(udp(A, IP_A), P1), PASS, 'then its IPv4');
  t.equal(verdict(udp(A, IP_B), P1), DROP, 'and nothing else');
  t.equal(verdict(ipv6Frame(A), P2), DROP, 'a second port with the MAC is refused');
  t.match(
    (await settle(4)).filter((e) => e.kind === 'learn'),
    [{ ifindex: P1, ip: IP_A, ethSrc: A, ethertype: 0x86dd }],
  );
});

t.test('the event budget: a burst is reported, the rest only counted', async (t) => {
  const { verdict, stats, settle, maps } = setup(t, 'enforce');
  maps.configure({ mode: 'enforce', dropIpv6: false, events: { perSecond: 1, burst: 3 } });
  maps.putPort(P1, { mac: A, ip: IP_A });
  for (let i = 0; i < 20; i++) t.equal(verdict(udp(A, `10.8.65.${i}`)), DROP);
  t.match(stats(), { dropped: 20, events: 3, limited: 17 });
  t.equal((await settle(3)).length, 3);
  maps.forgetPort(P1);
  t.same(stats(), ZERO_GUARD_STATS, "a port's counters go when it is forgotten");
});
