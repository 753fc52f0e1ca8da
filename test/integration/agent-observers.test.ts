// The agent runs the eBPF observer on its bridge (pinned maps on a bpffs this test mounts) and
// reports it, and the probe, in `status`.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/exec.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { portAttachments } from '../harness/attachments.js';
import { Testbed } from '../../src/testbed/testbed.js';

t.test('status lists the eBPF observer and the probe; a TCX link is on every port', async (t) => {
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
  t.match(await portAttachments(bed, s1, join(bpffs, 'bridgeward')), {
    tcxProgId: Number,
    clsact: 0,
  });
  const pins = await run(['ls', join(bpffs, 'bridgeward')]);
  t.same(pins.stdout.trim().split('\n').sort(), [
    'bw_bindings',
    'bw_events',
    'bw_port_stats',
    'bw_probes',
    'links',
  ]);
  t.equal((await agent.stop()).code, 0);
});
