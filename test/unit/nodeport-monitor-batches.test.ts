// `nft monitor` lines grouped into transactions: which process committed each, and whether it
// touched the agent's table (lines as nft 1.0.6 prints them).
import t from 'tap';
import { MonitorBatches } from '../../src/nodeport/monitor-batches.js';

const feed = (b: MonitorBatches, text: string) =>
  text
    .split('\n')
    .map((l) => b.push(l))
    .filter((x) => x !== null);

t.test('one batch per generation line, with the committing process', async (t) => {
  const b = new MonitorBatches('ip', 'bridgeward');
  const out = feed(
    b,
    `add table ip bridgeward
add map ip bridgeward nodeports { type inet_proto . inet_service : ipv4_addr . inet_service; }
# new generation 2 by process 4242 (node)
add element ip bridgeward nodeports { tcp . 6667 : 10.8.64.2 . 8080 }
# new generation 3 by process 4243 (nft)`,
  );
  t.same(out, [
    { generation: 2, pid: 4242, comm: 'node', touchesTable: true },
    { generation: 3, pid: 4243, comm: 'nft', touchesTable: true },
  ]);
});

t.test('other tables, lookalike names and unattributed events', async (t) => {
  const b = new MonitorBatches('ip', 'bridgeward');
  const out = feed(
    b,
    `add rule ip filter INPUT accept
add table ip bridgeward2
add table ip6 bridgeward
# new generation 7 by process 10 (iptables-nft)
W: Received event for an unknown set.
# new generation 8 by process 11 (nft)
delete rule ip bridgeward prerouting handle 4
# new generation 9`,
  );
  t.same(
    out.map((x) => [x.generation, x.touchesTable]),
    [
      [7, false],
      [8, true],
      [9, true],
    ],
    'only our family and name; an unattributed event counts as ours',
  );
  t.same(out[2], { generation: 9, pid: null, comm: null, touchesTable: true }, 'no process named');
});

t.test('a flush and a table delete touch the table', async (t) => {
  const b = new MonitorBatches('ip', 'bridgeward');
  t.match(b.push('delete table ip bridgeward'), null);
  t.match(b.push('# new generation 12 by process 99 (nft)'), { touchesTable: true, pid: 99 });
  t.match(b.push('# new generation 13 by process 99 (nft)'), { touchesTable: false });
});
