// The `nft` binary fallback driver against real nftables in a test namespace: full replace,
// read-back, one-key change, all-or-nothing failure.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { nftBinaryDriver, isNoSuchObject } from '../../src/nodeport/nft-driver.js';
import { LIST_TABLE, renderFullReplace } from '../../src/nodeport/ruleset.js';
import { parseTableListing } from '../../src/nodeport/readback.js';
import { diffElements, renderDiff } from '../../src/nodeport/diff.js';
import type { NatElement } from '../../src/nodeport/element.js';

const SPEC = { bridge: 'rt0', subnet: '10.8.64.0/24' };
const el = (hostPort: number, addr: string): NatElement => ({
  proto: 'tcp',
  hostPort,
  addr,
  port: 80,
});

t.test('nft binary driver: replace, read back, change, atomic failure', async (t) => {
  const bed = await Testbed.create({ subnet: SPEC.subnet });
  t.teardown(() => bed.destroy());
  const nft = nftBinaryDriver(bed.runnerNs);
  t.equal(nft.kind, 'nft-binary');
  await t.rejects(nft.run(LIST_TABLE, true), { code: 'KERNEL_ERROR' });
  t.ok(isNoSuchObject(await nft.run(LIST_TABLE, true).catch((e: unknown) => e)), 'no table yet');

  const first = [el(1000, '10.8.64.2'), el(1001, '10.8.64.3')];
  await nft.run(renderFullReplace(SPEC, first));
  const back = parseTableListing(await nft.run(LIST_TABLE, true));
  t.same(back.elements, first);
  t.equal(back.foreign, 0);

  const next = [el(1000, '10.8.64.4'), el(1002, '10.8.64.3')];
  await nft.run(renderDiff(diffElements(first, next)) ?? '');
  const after = parseTableListing(await nft.run(LIST_TABLE, true));
  t.same(after.elements, next, 'changed, removed and added in one transaction');
  t.equal(after.structure, back.structure, 'rules untouched');

  // A buffer whose second command fails changes nothing.
  await t.rejects(
    nft.run(
      'add element ip bridgeward nodeports { tcp . 2000 : 10.8.64.9 . 80 }\n' +
        'delete element ip bridgeward nodeports { tcp . 9999 }\n',
    ),
    { code: 'KERNEL_ERROR' },
  );
  t.same(parseTableListing(await nft.run(LIST_TABLE, true)).elements, next, 'all-or-nothing');

  // A full replace drops leftovers (foreign elements, extra chains) in one go.
  await nft.run(
    'add chain ip bridgeward leftover\nadd element ip bridgeward nodeports { sctp . 9 : 10.8.64.9 . 9 }',
  );
  await nft.run(renderFullReplace(SPEC, first));
  const clean = parseTableListing(await nft.run(LIST_TABLE, true));
  t.same(clean.elements, first);
  t.equal(clean.structure, back.structure);
  t.equal(clean.foreign, 0);
});
