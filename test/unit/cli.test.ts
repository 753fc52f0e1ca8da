import t from 'tap';
import { allVerbs, findVerb, helpText } from '../../src/cli/main.js';
import { formatKeyValues, formatTable } from '../../src/cli/output.js';
import { intFlag, resolveOutput } from '../../src/cli/args.js';
import { kernelAtLeast } from '../../src/cli/doctor.js';
import { readCapabilities } from '../../src/preflight.js';

t.test('every verb is in --help and found by its words (through its group)', async (t) => {
  const verbs = await allVerbs();
  const help = helpText(verbs);
  for (const v of verbs) {
    t.match(help, v.words.join(' '), `help lists ${v.words.join(' ')}`);
    t.equal((await findVerb([...v.words, '--x']))?.verb, v);
  }
  t.equal(await findVerb(['nope']), null);
  t.equal(await findVerb(['lease', 'nope']), null);
});

t.test('tables and key-value output', async (t) => {
  const text = formatTable(
    [
      { ip: '10.8.64.2', sandbox: 'a', tags: ['x', 'y'] },
      { ip: '10.8.64.10', sandbox: null, tags: [] },
    ],
    [
      ['IP', (r) => r.ip],
      ['SANDBOX', (r) => r.sandbox],
      ['TAGS', (r) => r.tags],
    ],
  );
  t.equal(text, 'IP          SANDBOX  TAGS\n10.8.64.2   a        x,y\n10.8.64.10  -        -\n');
  t.equal(formatKeyValues({ a: 1, b: { c: 'd' } }), 'a: 1\nb.c: d\n');
});

t.test('flag helpers', async (t) => {
  t.equal(resolveOutput(undefined), 'table');
  t.equal(resolveOutput('json'), 'json');
  t.throws(() => resolveOutput('xml'), /expected "table" or "json"/);
  t.equal(intFlag('port', '80', 1, 65535), 80);
  t.throws(() => intFlag('port', '0', 1, 65535), /--port "0": expected a whole number 1\.\.65535/);
  t.throws(() => intFlag('port', undefined, 1, 65535), /--port is required/);
});

t.test('kernel version and capability parsing', async (t) => {
  t.ok(kernelAtLeast('6.1.0-18-amd64', [5, 8]));
  t.ok(kernelAtLeast('5.8.0', [5, 8]));
  t.notOk(kernelAtLeast('5.4.0-150-generic', [5, 8]));
  t.notOk(kernelAtLeast('garbage', [5, 8]));
  const caps = readCapabilities('Name:\tnode\nCapEff:\t0000000000003000\n');
  t.same(caps, { netAdmin: true, netRaw: true, bpf: false, sysAdmin: false });
  t.same(readCapabilities('CapEff:\t000001ffffffffff\n'), {
    netAdmin: true,
    netRaw: true,
    bpf: true,
    sysAdmin: true,
  });
});
