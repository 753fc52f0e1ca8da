import t from 'tap';
import {
  boundTo,
  identityView,
  newIdentity,
  normalizeAudiences,
  registrationResult,
  rotatedIdentity,
  tokenOrigin,
  TOKEN_PATH,
} from '../../src/identity/registration.js';
import type { Lease } from '../../src/store/types.js';

const lease: Lease = {
  sandbox: 'app-1',
  ip: '10.8.64.3',
  mac: '02:00:00:00:00:03',
  ifindex: 7,
  ifname: 'veth3',
  state: 'active',
  generation: 5,
  allocatedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};
const now = new Date('2026-02-01T00:00:00.000Z');

t.test('a new identity is bound to the lease address and generation', async (t) => {
  const i = newIdentity(
    lease,
    { sandbox: 'app-1', app: 'web', audiences: ['a', 'b', 'a'] },
    'h1',
    now,
  );
  t.same(i, {
    sandbox: 'app-1',
    ip: '10.8.64.3',
    generation: 5,
    secretHash: 'h1',
    app: 'web',
    audiences: ['a', 'b'],
    createdAt: now.toISOString(),
    rotatedAt: now.toISOString(),
  });
  t.ok(boundTo(i, lease));
  t.notOk(boundTo(i, { ...lease, generation: 6 }), 'a new owner of the address is another lease');
  t.notOk(boundTo(i, { ...lease, ip: '10.8.64.4' }));
  t.notOk(boundTo(i, { ...lease, sandbox: 'app-2' }));
});

t.test('audiences default to the default audience', async (t) => {
  t.same(normalizeAudiences([]), ['bridgeward']);
  t.same(normalizeAudiences(['x']), ['x']);
});

t.test('rotation changes the hash and time only', async (t) => {
  const i = newIdentity(lease, { sandbox: 'app-1', app: null, audiences: [] }, 'h1', now);
  const later = new Date('2026-03-01T00:00:00.000Z');
  t.same(rotatedIdentity(i, 'h2', later), {
    ...i,
    secretHash: 'h2',
    rotatedAt: later.toISOString(),
  });
});

t.test('the one-time result carries secret, url and env; the view never the hash', async (t) => {
  const i = newIdentity(lease, { sandbox: 'app-1', app: null, audiences: [] }, 'h1', now);
  t.equal(tokenOrigin({ host: '10.8.64.1', port: 7123 }, '10.8.64.1'), 'http://10.8.64.1:7123');
  t.equal(tokenOrigin({ host: '0.0.0.0', port: 9000 }, '10.8.64.1'), 'http://10.8.64.1:9000');
  const url = tokenOrigin({ host: '10.8.64.1', port: 7123 }, '10.8.64.1') + TOKEN_PATH;
  t.equal(url, 'http://10.8.64.1:7123/v1/token');
  const r = registrationResult(i, 's3cret', url);
  t.equal(r.secret, 's3cret');
  t.equal(r.tokenUrl, url);
  t.same(r.env, { MIREN_IDENTITY_TOKEN_SECRET: 's3cret', MIREN_IDENTITY_TOKEN_URL: url });
  t.notOk('secretHash' in r);
  t.notOk('secretHash' in identityView(i));
  t.equal(identityView(i).generation, 5);
});
