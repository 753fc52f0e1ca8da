import t from 'tap';
import {
  authorizeTokenRequest,
  bearerSecret,
  RETRY_AFTER_SECONDS,
} from '../../src/identity/authorize.js';
import { hashSecret, newSecret } from '../../src/identity/secret.js';
import type { Identity, Lease } from '../../src/store/types.js';

const secret = newSecret();
const lease: Lease = {
  sandbox: 'app-1',
  ip: '10.8.64.3',
  mac: null,
  ifindex: null,
  ifname: null,
  state: 'active',
  generation: 2,
  allocatedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};
const identity: Identity = {
  sandbox: 'app-1',
  ip: '10.8.64.3',
  generation: 2,
  secretHash: hashSecret(secret),
  app: null,
  audiences: ['bridgeward'],
  createdAt: '2026-01-01T00:00:00.000Z',
  rotatedAt: '2026-01-01T00:00:00.000Z',
};
const sourceIp = '10.8.64.3';
const auth = { authorization: `Bearer ${secret}` };

function refusal(d: ReturnType<typeof authorizeTokenRequest>) {
  if (d.ok) throw new Error('expected a refusal');
  return { code: d.error.code, details: d.error.details, message: d.error.message };
}

t.test('bearer parsing', async (t) => {
  t.equal(bearerSecret('Bearer abc'), 'abc');
  t.equal(bearerSecret('bearer  abc'), 'abc');
  t.equal(bearerSecret('Basic abc'), null);
  t.equal(bearerSecret('Bearer '), null);
  t.equal(bearerSecret('Bearer a b'), null);
  t.equal(bearerSecret(undefined), null);
});

t.test('the right secret from the lease holder passes', async (t) => {
  const d = authorizeTokenRequest({ sourceIp, headers: auth, lease, identity, seen: null });
  t.ok(d.ok);
  if (d.ok) t.equal(d.identity.sandbox, 'app-1');
});

t.test('proxied requests are refused, not retryable', async (t) => {
  for (const h of [{ 'x-forwarded-for': '10.8.64.3' }, { forwarded: 'for=10.8.64.3' }]) {
    const r = refusal(
      authorizeTokenRequest({ sourceIp, headers: { ...auth, ...h }, lease, identity, seen: null }),
    );
    t.equal(r.code, 'INVALID_ARGUMENT');
    t.same(r.details, { retryable: false });
    t.match(r.message, /proxied requests/);
  }
});

t.test('no lease on the source address, or no identity yet: retryable', async (t) => {
  const a = refusal(
    authorizeTokenRequest({ sourceIp, headers: auth, lease: null, identity: null, seen: null }),
  );
  t.equal(a.code, 'UNKNOWN_ADDRESS');
  t.same(a.details, { retryable: true, retryAfterSeconds: RETRY_AFTER_SECONDS });
  const b = refusal(
    authorizeTokenRequest({ sourceIp, headers: auth, lease, identity: null, seen: null }),
  );
  t.equal(b.code, 'UNKNOWN_IDENTITY');
  t.same(b.details, { retryable: true, retryAfterSeconds: RETRY_AFTER_SECONDS });
});

t.test('missing or wrong secret, or an identity of an earlier lease: final', async (t) => {
  const cases: [Record<string, string>, Lease, RegExp][] = [
    [{}, lease, /missing "Authorization: Bearer <secret>"/],
    [{ authorization: `Bearer ${newSecret()}` }, lease, /invalid secret/],
    [auth, { ...lease, generation: 3 }, /bound to an earlier lease/],
    [auth, { ...lease, ip: '10.8.64.4' }, /bound to an earlier lease/],
  ];
  for (const [headers, l, re] of cases) {
    const r = refusal(authorizeTokenRequest({ sourceIp, headers, lease: l, identity, seen: null }));
    t.equal(r.code, 'INVALID_SECRET');
    t.same(r.details, { retryable: false });
    t.match(r.message, re);
    t.notMatch(r.message, secret, 'the secret is not echoed');
  }
});

t.test(
  'once the lease knows its MAC and port, the bridge must see the address there',
  async (t) => {
    const bound: Lease = { ...lease, mac: '02:00:00:00:00:03', ifindex: 7 };
    const facts = { sourceIp, headers: auth, lease: bound, identity };
    t.ok(
      authorizeTokenRequest({ ...facts, seen: { macs: ['02:00:00:00:00:03'], ifindexes: [7] } }).ok,
      'same MAC and port',
    );
    t.ok(authorizeTokenRequest({ ...facts, seen: null }).ok, 'nothing seen: not checked');
    t.ok(
      authorizeTokenRequest({ ...facts, seen: { macs: [], ifindexes: [] } }).ok,
      'empty evidence: not checked',
    );
    const mac = refusal(
      authorizeTokenRequest({ ...facts, seen: { macs: ['02:00:00:00:00:99'], ifindexes: [7] } }),
    );
    t.equal(mac.code, 'BINDING_MISMATCH');
    t.same(mac.details, { retryable: true, retryAfterSeconds: RETRY_AFTER_SECONDS });
    t.match(
      mac.message,
      /10\.8\.64\.3 is seen at MAC 02:00:00:00:00:99 on the bridge, but its lease is bound to 02:00:00:00:00:03/,
    );
    const port = refusal(
      authorizeTokenRequest({ ...facts, seen: { macs: ['02:00:00:00:00:03'], ifindexes: [9] } }),
    );
    t.equal(port.code, 'BINDING_MISMATCH');
    t.match(port.message, /seen on bridge port 9, but its lease is bound to port 7/);
    const wrong = refusal(
      authorizeTokenRequest({
        ...facts,
        headers: { authorization: `Bearer ${newSecret()}` },
        seen: { macs: ['02:00:00:00:00:99'], ifindexes: [9] },
      }),
    );
    t.equal(wrong.code, 'INVALID_SECRET', 'a wrong secret is refused first, as final');
    t.ok(
      authorizeTokenRequest({
        ...facts,
        lease: { ...lease, mac: null, ifindex: null },
        seen: { macs: ['02:00:00:00:00:99'], ifindexes: [9] },
      }).ok,
      'an unbound lease is not checked',
    );
  },
);
