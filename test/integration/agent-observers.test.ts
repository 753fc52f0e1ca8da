// The agent runs the eBPF observer on its bridge (pinned maps on a bpffs this test mounts) and
// reports it, and the probe, in `status`.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/exec.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { Testbed } from '../../src/testbed/testbed.js';

t.test('status lists the eBPF observer and the probe; the filter is on every port', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
  const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
  await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
  const s1 = await bed.addSandbox({ ip: '10.8.64.2' });
  const agent = AgentProcess.start(bed, {
    subnet: bed.subnet,
    'bpf-pin-dir': join(bpffs, 'bridgeward'),
  });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
    await run(['umount', bpffs], { check: false });
    rmSync(bpffs, { recursive: true, force: true });
  });
  await agent.ready();
  const status = await agent.json<{ observers: Record<string, boolean> }>(['status']);
  t.same(status.observers, { netlink: true, bpf: true, probe: true });
  const filters = await run(['tc', 'filter', 'show', 'dev', s1.hostIf, 'ingress'], {
    netns: bed.runnerNs,
  });
  t.match(filters.stdout, /handle 0xbd arp_observer/);
  const pins = await run(['ls', join(bpffs, 'bridgeward')]);
  t.same(pins.stdout.trim().split('\n').sort(), [
    'bw_bindings',
    'bw_events',
    'bw_port_stats',
    'bw_probes',
  ]);
  t.equal((await agent.stop()).code, 0);
});
