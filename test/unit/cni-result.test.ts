// What the CNI plugin prints: results per spec version, VERSION, error objects and their codes,
// and the CHECK and STATUS verdicts.
import t from 'tap';
import { errorResult, ipamResult, versionResult } from '../../src/cni/result.js';
import { checkLease } from '../../src/cni/check.js';
import { assertAvailable } from '../../src/cni/status.js';
import { BridgewardError } from '../../src/errors.js';
import { throwsCode } from '../harness/expect-code.js';

const a = { ip: '10.8.64.5', prefixLength: 24, gateway: '10.8.64.1' };

t.test('the abbreviated IPAM result, per version', async (t) => {
  t.same(ipamResult('1.0.0', a), {
    cniVersion: '1.0.0',
    ips: [{ address: '10.8.64.5/24', gateway: '10.8.64.1' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.8.64.1' }],
    dns: {},
  });
  t.same(ipamResult('1.1.0', a).ips, [{ address: '10.8.64.5/24', gateway: '10.8.64.1' }]);
  for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
    t.same(
      ipamResult(v, a).ips,
      [{ version: '4', address: '10.8.64.5/24', gateway: '10.8.64.1' }],
      `${v} names the IP version`,
    );
  }
  t.same(versionResult('0.4.0'), {
    cniVersion: '0.4.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
  });
});

t.test('error objects carry the spec codes', async (t) => {
  const e = (code: ConstructorParameters<typeof BridgewardError>[0]) =>
    new BridgewardError(code, `because ${code}`);
  const cases: [string | undefined, unknown, number, string][] = [
    ['ADD', e('INCOMPATIBLE_VERSION'), 1, 'Incompatible CNI version'],
    ['ADD', e('UNSUPPORTED_FIELD'), 2, 'Unsupported field in network configuration'],
    [undefined, e('INVALID_ENVIRONMENT'), 4, 'Invalid necessary environment variables'],
    ['ADD', e('IO_FAILURE'), 5, 'I/O failure'],
    ['ADD', e('INVALID_CONFIG'), 6, 'Failed to decode content'],
    ['ADD', e('INVALID_ARGUMENT'), 7, 'Invalid network config'],
    ['ADD', e('AGENT_UNREACHABLE'), 11, 'Try again later'],
    ['DEL', e('STORE_UNAVAILABLE'), 11, 'Try again later'],
    ['ADD', e('NOT_READY'), 11, 'Try again later'],
    ['ADD', e('CONFLICT'), 11, 'Try again later'],
    ['STATUS', e('AGENT_UNREACHABLE'), 50, 'The plugin is not available'],
    ['STATUS', e('POOL_EXHAUSTED'), 50, 'The plugin is not available'],
    ['STATUS', e('INVALID_ARGUMENT'), 7, 'Invalid network config'],
    ['ADD', e('POOL_EXHAUSTED'), 100, 'No free address in the pool'],
    ['CHECK', e('UNKNOWN_SANDBOX'), 101, "The attachment's lease is missing or differs"],
    ['CHECK', e('LEASE_MISMATCH'), 101, "The attachment's lease is missing or differs"],
    ['ADD', e('INTERNAL'), 102, 'The agent failed'],
    ['ADD', new Error('boom'), 102, 'The agent failed'],
  ];
  for (const [command, err, code, msg] of cases) {
    const r = errorResult('1.0.0', command, err);
    t.same(r, { cniVersion: '1.0.0', code, msg, details: r.details }, `${command}: ${String(err)}`);
    t.ok(r.details.length > 0, 'details say what exactly');
  }
});

t.test('CHECK: the lease must hold an address the runtime recorded', async (t) => {
  const lease = { sandbox: 'c1.eth0', ip: '10.8.64.5' };
  t.doesNotThrow(() => checkLease(lease, { addresses: ['10.8.64.5/24'], mac: null }));
  const err = throwsCode(
    t,
    () => checkLease(lease, { addresses: ['10.8.64.6/24'], mac: null }),
    'LEASE_MISMATCH',
  );
  t.match(String(err), /c1\.eth0 holds 10\.8\.64\.5, but prevResult records 10\.8\.64\.6\/24/);
  throwsCode(t, () => checkLease(lease, { addresses: [], mac: null }), 'LEASE_MISMATCH');
});

t.test('STATUS: available while an address is free or cooling', async (t) => {
  const pool = {
    subnet: '10.8.64.0/29',
    gateway: '10.8.64.1',
    total: 5,
    active: 4,
    quarantined: 0,
    cooling: 0,
    liveUnleased: 0,
    free: 1,
  };
  t.doesNotThrow(() => assertAvailable(pool));
  t.doesNotThrow(() => assertAvailable({ ...pool, free: 0, cooling: 1 }));
  const err = throwsCode(
    t,
    () => assertAvailable({ ...pool, free: 0, quarantined: 1 }),
    'POOL_EXHAUSTED',
  );
  t.match(String(err), /no free address in 10\.8\.64\.0\/29: 4 active, 1 quarantined/);
});
