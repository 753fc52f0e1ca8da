// A sandbox floods ARP with a new spoofed sender IP and MAC in every frame (the C sender of the
// detect benchmark): the agent raises an arp-storm finding naming its port and sandbox, with the
// kernel's over-budget rate, and a duplicate claimed from two other ports during the storm is
// still found.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest } from '../../src/api/client.js';
import { openEventStream } from '../../src/api/event-stream-client.js';
import type { Finding } from '../../src/detect/finding.js';
import { run } from '../../src/exec.js';
import { BROADCAST_MAC, ZERO_MAC, buildArpFrame } from '../../src/net/arp.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import { startStorm } from '../../bench/arp-storm.js';
import { sendFrames } from '../harness/send-frames.js';

/** A gratuitous ARP from `s` for `ip`. */
function announce(s: Sandbox, ip: string): Buffer {
  return buildArpFrame({
    ethDst: BROADCAST_MAC,
    ethSrc: s.mac,
    vlan: null,
    op: 'request',
    senderMac: s.mac,
    senderIp: ip,
    targetMac: ZERO_MAC,
    targetIp: ip,
  });
}

t.test('a spoofed-binding storm: an arp-storm finding, and detection goes on', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
  const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
  await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
  const a = await bed.addSandbox();
  const b = await bed.addSandbox();
  const storm = await bed.addSandbox({ ip: '10.8.64.250' });
  const agent = AgentProcess.start(bed, {
    subnet: bed.subnet,
    'bpf-pin-dir': join(bpffs, 'bridgeward'),
  });
  const findings: { event: string; finding: Finding }[] = [];
  let stream: { close(): void } | null = null;
  let stopStorm = () => {};
  t.teardown(async () => {
    stopStorm();
    stream?.close();
    await agent.cleanup();
    await bed.destroy();
    await run(['umount', bpffs], { check: false });
    rmSync(bpffs, { recursive: true, force: true });
  });
  await agent.ready();
  stream = openEventStream(agent.socket, (e) =>
    findings.push({ event: e.event, finding: JSON.parse(e.data) as Finding }),
  );
  const lease = (sandbox: string, mac: string) =>
    apiRequest<{ ip: string }>(agent.socket, 'POST', '/v1/leases', { sandbox, mac });
  await lease('stormy', storm.mac);
  const { ip } = await lease('app-a', a.mac);

  const running = startStorm(storm, 'spoof', 5000, 30);
  stopStorm = running.stop;
  const until = async (what: string, pred: (f: Finding, event: string) => boolean) => {
    for (let i = 0; i < 500; i++) {
      const hit = findings.find((x) => pred(x.finding, x.event));
      if (hit) return hit.finding;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no ${what}; got ${JSON.stringify(findings.map((x) => x.finding.kind))}`);
  };
  const raised = await until('arp-storm', (f) => f.kind === 'arp-storm');
  t.match(raised, {
    kind: 'arp-storm',
    ip: null,
    ports: [storm.hostIf],
    ifindexes: [storm.hostIfindex],
    severity: 'warn',
    quarantine: false,
  });
  t.ok((raised.rates?.limitedPerSecond ?? 0) > 0, 'new bindings over the budget, per second');
  const named = await until(
    'the storm sandbox',
    (f) => f.kind === 'arp-storm' && f.sandboxes.includes('stormy'),
  );
  t.same(named.sandboxes, ['stormy'], 'the port is named with its sandbox');

  await sendFrames(bed, a, [announce(a, ip)]);
  await new Promise((r) => setTimeout(r, 100));
  await sendFrames(bed, b, [announce(b, ip)]);
  const dup = await until('duplicate-ip', (f) => f.kind === 'duplicate-ip' && f.ip === ip);
  t.same(dup.macs, [a.mac, b.mac].sort(), 'a duplicate from other ports is found mid-storm');
  t.same(dup.ports, [a.hostIf, b.hostIf].sort());

  const conflicts = await agent.json<Finding[]>(['conflicts']);
  const active = conflicts.find((f) => f.kind === 'arp-storm');
  t.ok((active?.rates?.limitedTotal ?? 0) > 0, 'the storm is active with its rates');
  t.ok((active?.rates?.peakArpPerSecond ?? 0) > 0);
  stopStorm();
  await running.done;
});
