// Reading a CNI invocation: commands, versions, the ipam settings, attachments, prevResult and
// GC lists, with the spec's error kind for each kind of bad input.
import t from 'tap';
import { parseCniRequest, errorVersion, DEFAULT_TIMEOUT_MS } from '../../src/cni/request.js';
import { attachmentProblem, sandboxIdOf } from '../../src/cni/attachment.js';
import { assertCommandAllowed, parseSpecVersion } from '../../src/cni/spec-version.js';
import { throwsCode } from '../harness/expect-code.js';
import type { ErrorCode } from '../../src/errors.js';

const ENV = { CNI_CONTAINERID: 'c0ffee', CNI_IFNAME: 'eth0', CNI_NETNS: '/run/netns/c0ffee' };
const conf = (extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'runner',
    type: 'bridge',
    ipam: { type: 'bridgeward', ...ipam },
    ...extra,
  });

t.test('ADD, DEL and CHECK name an attachment', async (t) => {
  t.same(parseCniRequest({ ...ENV, CNI_COMMAND: 'ADD' }, conf()), {
    command: 'ADD',
    cniVersion: '1.0.0',
    ipam: { socket: null, timeoutMs: DEFAULT_TIMEOUT_MS },
    attachment: { containerId: 'c0ffee', ifname: 'eth0' },
    prevResult: null,
  });
  const del = parseCniRequest(
    { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0ffee', CNI_IFNAME: 'eth0' },
    conf({}, { socket: '/run/bw/api.sock', timeoutMs: 250 }),
  );
  t.match(
    del,
    { command: 'DEL', ipam: { socket: '/run/bw/api.sock', timeoutMs: 250 } },
    'DEL needs no netns',
  );
  const prevResult = {
    interfaces: [
      { name: 'rt0', mac: '02:00:00:00:00:01' },
      { name: 'eth0', mac: '02:00:00:00:00:02' },
      { name: 'eth0', mac: '0A-BB-00-00-00-03', sandbox: '/run/netns/c0ffee' },
    ],
    ips: [{ address: '10.8.64.5/24', gateway: '10.8.64.1', interface: 2 }],
  };
  t.match(
    parseCniRequest({ ...ENV, CNI_COMMAND: 'CHECK' }, conf({ prevResult })),
    {
      command: 'CHECK',
      prevResult: { addresses: ['10.8.64.5/24'], mac: '0a:bb:00:00:00:03' },
    },
    "the MAC is the container's CNI_IFNAME, not a host interface of the same name",
  );
});

t.test('VERSION, GC and STATUS', async (t) => {
  t.same(parseCniRequest({ CNI_COMMAND: 'VERSION' }, ''), {
    command: 'VERSION',
    cniVersion: '1.1.0',
  });
  t.same(parseCniRequest({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}'), {
    command: 'VERSION',
    cniVersion: '0.4.0',
  });
  const gc = { cniVersion: '1.1.0' };
  t.match(
    parseCniRequest(
      { CNI_COMMAND: 'GC' },
      conf({ ...gc, 'cni.dev/valid-attachments': [{ containerID: 'a1', ifname: 'eth0' }] }),
    ),
    { command: 'GC', valid: [{ containerId: 'a1', ifname: 'eth0' }] },
  );
  t.match(
    parseCniRequest({ CNI_COMMAND: 'GC' }, conf({ ...gc, 'cni.dev/attachments': [] })),
    { command: 'GC', valid: [] },
    'the key libcni also sends',
  );
  t.match(parseCniRequest({ CNI_COMMAND: 'STATUS' }, conf(gc)), { command: 'STATUS' });
});

t.test('bad input gets the spec error kind and names what is wrong', async (t) => {
  const cases: [Record<string, string>, string, ErrorCode, RegExp][] = [
    [{}, conf(), 'INVALID_ENVIRONMENT', /CNI_COMMAND missing/],
    [
      { CNI_COMMAND: 'ATTACH' },
      conf(),
      'INVALID_ENVIRONMENT',
      /CNI_COMMAND "ATTACH" is not one of/,
    ],
    [
      { CNI_COMMAND: 'ADD' },
      conf(),
      'INVALID_ENVIRONMENT',
      /CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS missing/,
    ],
    [{ ...ENV, CNI_COMMAND: 'ADD' }, 'garbage', 'INVALID_CONFIG', /not JSON/],
    [{ ...ENV, CNI_COMMAND: 'ADD' }, '[1]', 'INVALID_CONFIG', /not a JSON object/],
    [{ CNI_COMMAND: 'VERSION' }, '{', 'INVALID_CONFIG', /not JSON/],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({ cniVersion: '0.2.0' }),
      'INCOMPATIBLE_VERSION',
      /"0\.2\.0" is not supported/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({ cniVersion: undefined }),
      'INCOMPATIBLE_VERSION',
      /"0\.1\.0"/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'CHECK' },
      conf({ cniVersion: '0.3.1', prevResult: {} }),
      'INCOMPATIBLE_VERSION',
      /CHECK needs cniVersion 0\.4\.0/,
    ],
    [{ CNI_COMMAND: 'GC' }, conf(), 'INCOMPATIBLE_VERSION', /GC needs cniVersion 1\.1\.0/],
    [
      { CNI_COMMAND: 'STATUS' },
      conf({ cniVersion: '1.0.0' }),
      'INCOMPATIBLE_VERSION',
      /STATUS needs/,
    ],
    [{ ...ENV, CNI_COMMAND: 'ADD' }, conf({ name: '' }), 'INVALID_ARGUMENT', /no "name"/],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({ ipam: undefined }),
      'INVALID_ARGUMENT',
      /no "ipam" object/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({}, { subnet: '10.1.0.0/16' }),
      'UNSUPPORTED_FIELD',
      /ipam\.subnet="10\.1\.0\.0\/16"/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({}, { socket: 'api.sock' }),
      'INVALID_ARGUMENT',
      /ipam\.socket "api\.sock": expected an absolute path/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({}, { timeoutMs: 5 }),
      'INVALID_ARGUMENT',
      /ipam\.timeoutMs 5/,
    ],
    [{ ...ENV, CNI_COMMAND: 'CHECK' }, conf(), 'INVALID_ARGUMENT', /CHECK needs the "prevResult"/],
    [
      { ...ENV, CNI_COMMAND: 'CHECK' },
      conf({ prevResult: { ips: {} } }),
      'INVALID_CONFIG',
      /prevResult\.ips is not a list/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD' },
      conf({ prevResult: { ips: [{}] } }),
      'INVALID_CONFIG',
      /prevResult\.ips\[0\] has no "address"/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0.5' },
      conf(),
      'INVALID_ENVIRONMENT',
      /CNI_IFNAME "eth0\.5"/,
    ],
    [
      { ...ENV, CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-x' },
      conf(),
      'INVALID_ENVIRONMENT',
      /CNI_CONTAINERID "-x"/,
    ],
    [
      { CNI_COMMAND: 'GC' },
      conf({ cniVersion: '1.1.0' }),
      'INVALID_ARGUMENT',
      /GC needs "cni\.dev\/valid-attachments"/,
    ],
    [
      { CNI_COMMAND: 'GC' },
      conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 1 }] }),
      'INVALID_ARGUMENT',
      /valid-attachments\[0\]/,
    ],
  ];
  for (const [env, stdin, code, re] of cases) {
    throwsCode(t, () => parseCniRequest(env, stdin), code, `${env.CNI_COMMAND}: ${re}`);
    t.throws(() => parseCniRequest(env, stdin), re);
  }
});

t.test('an error object carries the request version when it can be read', async (t) => {
  t.equal(errorVersion('{"cniVersion":"0.4.0"}'), '0.4.0');
  t.equal(errorVersion('{"cniVersion":"9.9.9"}'), '9.9.9', 'echoed even when unsupported');
  t.equal(errorVersion('garbage'), '1.1.0');
  t.equal(errorVersion('null'), '1.1.0');
});

t.test('attachments map to sandbox ids one to one', async (t) => {
  t.equal(sandboxIdOf({ containerId: 'a.b', ifname: 'c' }), 'a.b.c');
  t.equal(attachmentProblem({ containerId: 'a.b', ifname: 'c' }), null);
  t.match(
    attachmentProblem({ containerId: 'a', ifname: 'b.c' }),
    /CNI_IFNAME "b\.c"/,
    'no dot in ifname: ids split at the last dot',
  );
  t.match(attachmentProblem({ containerId: 'a', ifname: '' }), /CNI_IFNAME ""/);
  t.match(
    attachmentProblem({ containerId: 'a', ifname: 'abcdefghijklmnop' }),
    /CNI_IFNAME/,
    '16 characters',
  );
  t.equal(attachmentProblem({ containerId: 'c'.repeat(123), ifname: 'eth0' }), null, '128 in all');
  t.match(
    attachmentProblem({ containerId: 'c'.repeat(124), ifname: 'eth0' }),
    /would have 129, at most 128/,
  );
});

t.test('spec versions', async (t) => {
  t.equal(parseSpecVersion('0.3.0'), '0.3.0');
  throwsCode(t, () => parseSpecVersion(1), 'INCOMPATIBLE_VERSION');
  t.doesNotThrow(() => assertCommandAllowed('CHECK', '0.4.0'));
  t.doesNotThrow(() => assertCommandAllowed('GC', '1.1.0'));
  t.doesNotThrow(() => assertCommandAllowed('ADD', '0.3.0'));
});
