import t from 'tap';
import {
  activeKey,
  initialRing,
  parseKeyRing,
  pruneRing,
  publicJwks,
  rotateRing,
  type SigningKey,
} from '../../src/identity/key-ring.js';

function key(kid: string): SigningKey {
  return {
    kid,
    privateJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${kid}`, d: `d-${kid}` },
    createdAt: '2026-01-01T00:00:00.000Z',
    retiredAt: null,
    keepUntil: null,
  };
}
const t0 = new Date('2026-01-01T00:00:00.000Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);

t.test('rotation retires the active key and keeps it until its last token expires', async (t) => {
  let ring = initialRing(key('k1'));
  t.equal(activeKey(ring).kid, 'k1');
  ring = rotateRing(ring, key('k2'), at(100), 3600);
  t.equal(activeKey(ring).kid, 'k2');
  t.same(
    ring.keys.map((k) => [k.kid, k.retiredAt, k.keepUntil]),
    [
      ['k2', null, null],
      ['k1', at(100).toISOString(), at(3700).toISOString()],
    ],
  );
  t.same(
    publicJwks(ring, at(3699)).keys.map((k) => k.kid),
    ['k2', 'k1'],
    'both published before k1 tokens expire',
  );
  t.same(
    publicJwks(ring, at(3700)).keys.map((k) => k.kid),
    ['k2'],
    'k1 gone once its last token expired',
  );
  ring = rotateRing(ring, key('k3'), at(200), 3600);
  t.same(
    ring.keys.map((k) => k.kid),
    ['k3', 'k2', 'k1'],
  );
  t.equal(ring.keys[2]?.keepUntil, at(3700).toISOString(), 'k1 keeps its own keep time');
  t.same(
    pruneRing(ring, at(5000)).keys.map((k) => k.kid),
    ['k3'],
  );
});

t.test('the JWKS has public halves only', async (t) => {
  const jwks = publicJwks(initialRing(key('k1')), t0);
  t.same(jwks, {
    keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'x-k1', kid: 'k1', alg: 'EdDSA', use: 'sig' }],
  });
  t.notMatch(JSON.stringify(jwks), /"d"/);
});

t.test('parsing the persisted ring', async (t) => {
  const ring = rotateRing(initialRing(key('k1')), key('k2'), t0, 60);
  t.same(parseKeyRing(JSON.stringify(ring), 'f.json'), ring, 'round trip');
  const bad: [string, RegExp][] = [
    ['not json', /signing key file f\.json is unusable: /],
    ['{}', /no keys/],
    ['{"keys":[]}', /no keys/],
    [
      JSON.stringify({ keys: [{ ...key('k1'), privateJwk: { kty: 'EC' } }] }),
      /key 0 is not an Ed25519/,
    ],
    [
      JSON.stringify({
        keys: [{ ...key('k1'), privateJwk: { ...key('k1').privateJwk, d: undefined } }],
      }),
      /key 0/,
    ],
    [JSON.stringify({ keys: [ring.keys[1]] }), /the first key, and only it, must be active/],
    [JSON.stringify({ keys: [key('a'), key('b')] }), /only it, must be active/],
    [JSON.stringify({ keys: [key('a'), { ...key('b'), retiredAt: t0.toISOString() }] }), /only it/],
  ];
  for (const [text, re] of bad) {
    t.throws(() => parseKeyRing(text, 'f.json'), { code: 'INVALID_CONFIG', message: re }, text);
  }
});
