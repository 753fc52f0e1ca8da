import t from 'tap';
import { resolveConfig } from '../../src/config.js';

t.test('identity token server: default on the gateway, configurable, can be off', async (t) => {
  const c = resolveConfig({ subnet: '10.8.64.0/24' });
  t.same(c.identityListen, { host: '10.8.64.1', port: 7123 });
  t.equal(c.identityTokenDir, null, 'token files are off by default');
  t.same(
    resolveConfig({ subnet: '10.8.64.0/24', gateway: '10.8.64.254' }).identityListen,
    { host: '10.8.64.254', port: 7123 },
    'follows the gateway',
  );
  t.same(resolveConfig({ subnet: '10.8.64.0/24', identityListen: '0.0.0.0:9000' }).identityListen, {
    host: '0.0.0.0',
    port: 9000,
  });
  t.equal(resolveConfig({ subnet: '10.8.64.0/24', identityListen: 'off' }).identityListen, null);
  t.equal(
    resolveConfig({ subnet: '10.8.64.0/24' }, { identityTokenDir: '/run/bw/tokens' })
      .identityTokenDir,
    '/run/bw/tokens',
    'from the config file',
  );
});

t.test('bad identity settings are refused with the flag named', async (t) => {
  t.throws(() => resolveConfig({ subnet: '10.8.64.0/24', identityListen: '10.8.64.1' }), {
    code: 'INVALID_ARGUMENT',
    message: /--identity-listen: "10\.8\.64\.1": expected host:port/,
  });
  t.throws(() => resolveConfig({ subnet: '10.8.64.0/24', identityTokenDir: 'tokens' }), {
    code: 'INVALID_ARGUMENT',
    message: /--identity-token-dir "tokens": must be an absolute path/,
  });
});
