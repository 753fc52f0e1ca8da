// A real CNI runtime on top: Debian's podman 4.3 runs containers on a conflist whose bridge is
// rt0 and whose IPAM is bridgeward. The container gets its address from the agent, the lease
// names it, `podman rm` releases it, and two containers started at once never share an address.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { CniNetwork } from '../../src/testbed/cni.js';
import { Podman } from '../../src/testbed/podman.js';
import type { Lease, LeaseEvent } from '../../src/store/types.js';

t.test('podman containers get their addresses from the agent', async (t) => {
  const subnet = '10.8.127.0/24';
  const bed = await Testbed.create({ subnet, bridgeMac: '02:b0:00:00:00:02' });
  const agent = AgentProcess.start(bed, { subnet, 'identity-listen': 'off' });
  let podman: Podman | null = null;
  t.teardown(async () => {
    await podman?.cleanup();
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const net = CniNetwork.create(bed, agent);
  podman = await Podman.create(bed, net, agent.dir);
  const p = podman;
  const start = (name: string) =>
    p.run(['run', '-d', '--name', name, '--network', net.name, p.image, 'sleep', '600'], true);
  /** The container's id and the address on its eth0. */
  const inspect = async (name: string) => {
    const id = (await p.run(['inspect', '--format', '{{.Id}}', name], true)).stdout.trim();
    const addr = (await p.run(['exec', name, 'ip', '-o', '-4', 'addr', 'show', 'eth0'], true))
      .stdout;
    return { id, ip: /inet (\d+\.\d+\.\d+\.\d+)\//.exec(addr)?.[1] };
  };

  await start('one');
  const one = await inspect('one');
  t.match(one.ip, /^10\.8\.127\.\d+$/, `one has ${one.ip}`);
  const ping = await p.run(['exec', 'one', 'ping', '-c1', '-W2', bed.gateway]);
  t.equal(ping.code, 0, 'it reaches the gateway');
  t.match(
    await agent.json<Lease[]>(['lease', 'list']),
    [{ sandbox: `${one.id}.eth0`, ip: one.ip }],
    "the agent's lease names the container",
  );

  await p.run(['rm', '--force', '--time', '0', 'one'], true);
  t.same(await agent.json<Lease[]>(['lease', 'list']), [], 'podman rm released it');
  const history = await agent.json<LeaseEvent[]>(['lease', 'history', '--ip', one.ip ?? '']);
  t.match(history.at(-1), { kind: 'released', sandbox: `${one.id}.eth0` });

  const both = await Promise.all([start('two'), start('three')]);
  t.same(
    both.map((r) => r.code),
    [0, 0],
    'two containers started at once',
  );
  const [two, three] = [await inspect('two'), await inspect('three')];
  t.ok(two.ip && three.ip && two.ip !== three.ip, `distinct addresses: ${two.ip} ${three.ip}`);
  t.same(
    (await agent.json<Lease[]>(['lease', 'list'])).map((l) => [l.sandbox, l.ip]).sort(),
    [
      [`${two.id}.eth0`, two.ip],
      [`${three.id}.eth0`, three.ip],
    ].sort(),
  );
});
