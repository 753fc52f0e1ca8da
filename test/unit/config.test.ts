import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfigFile, resolveConfig, parseStoreSpec } from '../../src/config.js';
import type { BridgewardError } from '../../src/errors.js';

t.test('defaults and derived gateway', async (t) => {
  const c = resolveConfig({ subnet: '10.8.64.0/24' });
  t.equal(c.bridge, 'rt0');
  t.equal(c.gateway, '10.8.64.1');
  t.equal(c.subnetText, '10.8.64.0/24');
  t.same(c.store, { kind: 'sqlite' });
  t.same(c.metricsListen, { host: '127.0.0.1', port: 9464 });
  t.equal(c.holdDownSeconds, 60);
  t.equal(c.nftMonitor, true);
  t.equal(c.sysctlDir, '/proc/sys');
  t.equal(resolveConfig({ subnet: '10.8.64.0/24', nftMonitor: 'off' }).nftMonitor, false);
  t.equal(resolveConfig({ subnet: '10.8.64.0/24', holdDownSeconds: '5' }).holdDownSeconds, 5);
  t.equal(c.guard, 'monitor', 'the bridge guard watches by default');
  t.equal(c.guardIpv6, 'pass');
  const enforcing = resolveConfig({ subnet: '10.8.64.0/24', guard: 'enforce', guardIpv6: 'drop' });
  t.same([enforcing.guard, enforcing.guardIpv6], ['enforce', 'drop']);
});

t.test('flags override the file, the file overrides defaults', async (t) => {
  const c = resolveConfig(
    { bridge: 'br9' },
    { bridge: 'br1', subnet: '10.1.0.0/16', logLevel: 'debug' },
  );
  t.equal(c.bridge, 'br9');
  t.equal(c.logLevel, 'debug');
  t.equal(c.gateway, '10.1.0.1');
});

t.test('precise errors for bad values', async (t) => {
  const bad: [Record<string, string>, RegExp][] = [
    [{}, /--subnet is required/],
    [{ subnet: '10.8.64.0' }, /--subnet: invalid CIDR/],
    [{ subnet: '10.8.64.5/24' }, /host bits set \(did you mean 10\.8\.64\.0\/24\?\)/],
    [{ subnet: '10.8.64.0/33' }, /bad prefix length|8\.\.30/],
    [{ subnet: '10.8.300.0/24' }, /invalid IPv4 address/],
    [
      { subnet: '10.8.64.0/24', gateway: '10.8.65.1' },
      /--gateway 10\.8\.65\.1 is not a host address of 10\.8\.64\.0\/24/,
    ],
    [{ subnet: '10.8.64.0/24', gateway: '10.8.64.255' }, /not a host address/],
    [{ subnet: '10.8.64.0/24', store: 'mysql' }, /expected "sqlite" or "etcd:/],
    [{ subnet: '10.8.64.0/24', socket: 'relative.sock' }, /--socket .* must be an absolute path/],
    [{ subnet: '10.8.64.0/24', metricsListen: 'localhost' }, /host:port/],
    [{ subnet: '10.8.64.0/24', logLevel: 'loud' }, /--log-level "loud": expected one of/],
    [{ subnet: '10.8.64.0/24', nftMonitor: 'yes' }, /--nft-monitor "yes": expected on or off/],
    [
      { subnet: '10.8.64.0/24', sysctlDir: 'host/proc' },
      /--sysctl-dir .* must be an absolute path/,
    ],
    [
      { subnet: '10.8.64.0/24', guard: 'on' },
      /--guard "on": expected one of off, monitor, enforce/,
    ],
    [
      { subnet: '10.8.64.0/24', guardIpv6: 'block' },
      /--guard-ipv6 "block": expected one of pass, drop/,
    ],
    [{ subnet: '10.8.64.0/24', bridge: 'a-name-that-is-too-long' }, /--bridge/],
    [{ subnet: '10.8.64.0/24', cooldownSeconds: '-1' }, /--cooldown-seconds/],
    [
      { subnet: '10.8.64.0/24', holdDownSeconds: '0' },
      /--hold-down-seconds "0": expected whole seconds 1\.\.86400/,
    ],
  ];
  for (const [flags, re] of bad) {
    t.throws(() => resolveConfig(flags), re, JSON.stringify(flags));
    try {
      resolveConfig(flags);
    } catch (e) {
      t.equal((e as BridgewardError).code, 'INVALID_ARGUMENT');
    }
  }
});

t.test('etcd store spec', async (t) => {
  t.same(parseStoreSpec('etcd://127.0.0.1:2379,10.0.0.2:2379'), {
    kind: 'etcd',
    endpoints: ['http://127.0.0.1:2379', 'http://10.0.0.2:2379'],
  });
  t.throws(() => parseStoreSpec('etcd://'), /empty endpoint/);
  t.throws(() => parseStoreSpec('etcd://h:99999'), /host:port/);
});

t.test('config file: unknown keys and bad JSON are INVALID_CONFIG', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-cfg-'));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ subnet: '10.8.64.0/24', bridge: 'rt1' }));
  t.same(readConfigFile(good), { subnet: '10.8.64.0/24', bridge: 'rt1' });
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ subnett: 'x' }));
  t.throws(() => readConfigFile(unknown), {
    code: 'INVALID_CONFIG',
    message: /unknown key "subnett"/,
  });
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{');
  t.throws(() => readConfigFile(broken), { code: 'INVALID_CONFIG', message: /not valid JSON/ });
  t.throws(() => readConfigFile(join(dir, 'missing.json')), {
    code: 'INVALID_CONFIG',
    message: /cannot read/,
  });
});
