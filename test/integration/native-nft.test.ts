// The addon's libnftables binding, run inside a test bed's runner namespace (never the root one).
import t from 'tap';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/native.js';
import { Testbed } from '../../src/testbed/testbed.js';

const NATIVE = join(REPO_ROOT, 'dist', 'src', 'native.js');

/** Runs `nftRun` for each command in the runner namespace and returns the results. */
async function nftInNs(bed: Testbed, cmds: [string, boolean][]): Promise<unknown[]> {
  const script = `
    const { loadNative } = await import(${JSON.stringify(NATIVE)});
    const { addon, error } = loadNative();
    if (!addon) throw new Error(error);
    const cmds = ${JSON.stringify(cmds)};
    console.log(JSON.stringify(cmds.map(([c, j]) => addon.nftRun(c, j))));`;
  const r = await bed.exec(bed.runnerNs, [process.execPath, '--input-type=module', '-e', script]);
  return JSON.parse(r.stdout) as unknown[];
}

t.test('nftRun runs transactions, lists as text or JSON, reports errors', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24', bridge: false });
  t.teardown(() => bed.destroy());
  const [add, json, text, bad, afterBad, del] = (await nftInNs(bed, [
    [
      'add table inet bridgeward\nadd map inet bridgeward ports { type inet_service : ipv4_addr; }',
      false,
    ],
    ['list ruleset', true],
    ['list ruleset', false],
    // one buffer is one transaction: the valid element must not survive the bad one
    [
      'add element inet bridgeward ports { 80 : 10.8.64.2 }\nadd element inet bridgeward nope { 1 : 1.2.3.4 }',
      false,
    ],
    ['list map inet bridgeward ports', false],
    ['delete table inet bridgeward', false],
  ])) as { rc: number; output: string; error: string }[];
  t.same(add, { rc: 0, output: '', error: '' });
  const parsed = JSON.parse(json!.output) as { nftables: Record<string, { name?: string }>[] };
  t.ok(
    parsed.nftables.some((o) => o.table?.name === 'bridgeward'),
    'JSON listing has the table',
  );
  t.ok(
    parsed.nftables.some((o) => o.map?.name === 'ports'),
    'JSON listing has the map',
  );
  t.match(text!.output, /table inet bridgeward \{/);
  t.not(bad!.rc, 0);
  t.match(bad!.error, /No such file or directory/);
  t.equal(bad!.output, '');
  t.notMatch(afterBad!.output, /10\.8\.64\.2/, 'failed transaction left nothing behind');
  t.equal(afterBad!.error, '', 'error buffer is reset between commands');
  t.same(del, { rc: 0, output: '', error: '' });
});

t.test('nftRun rejects wrong argument types', async (t) => {
  const { loadNative } = await import('../../src/native.js');
  const { addon, error } = loadNative();
  t.ok(addon, error ?? '');
  t.throws(() => (addon!.nftRun as (...a: unknown[]) => unknown)(42, false), TypeError);
});
