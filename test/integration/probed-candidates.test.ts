// The pre-handout probe off the allocation path keeps its guarantee on a real bridge: a probe
// vouches for an address for `FRESH_FOR_MS` (5 s) only, so a silent squatter that arrives after the address was
// probed (and handed out, and released) is found before the address is handed out again.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import type { AllocationView } from '../../src/api/lease-routes.js';
import type { Quarantine } from '../../src/store/types.js';
import { FRESH_FOR_MS } from '../../src/ipam/probed-candidates.js';

t.test('a silent squatter arriving after the last handout never gets the address', async (t) => {
  const subnet = '10.8.121.0/30'; // one address besides the gateway: .2
  const bed = await Testbed.create({ subnet });
  const agent = AgentProcess.start(bed, { subnet, 'identity-listen': 'off' });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const first = await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', 'first']);
  t.equal(first.ip, '10.8.121.2', 'probed silent, handed out');
  await agent.json(['lease', 'release', '--sandbox', 'first']);

  await bed.addSandbox({ ip: '10.8.121.2' }); // answers ARP, never speaks first
  // Longer than a silent probe vouches for.
  await new Promise((r) => setTimeout(r, FRESH_FOR_MS + 500));
  const second = await agent.cli(['lease', 'allocate', '--sandbox', 'second']);
  t.equal(second.code, 1, 'not handed out again');
  t.match(second.stderr, /no free address in 10\.8\.121\.0\/30: 0 active, 1 quarantined/);
  const q = await agent.json<Quarantine[]>(['quarantine', 'list']);
  t.same(
    q.map((r) => r.ip),
    ['10.8.121.2'],
    'quarantined once the probe found the squatter',
  );
});
