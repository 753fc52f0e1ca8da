import t from 'tap';
import {
  DEFAULT_AUDIENCE,
  TOKEN_TTL,
  tokenClaims,
  tokenParams,
} from '../../src/identity/claims.js';
import type { Identity } from '../../src/store/types.js';

const identity: Identity = {
  sandbox: 'app-1',
  ip: '10.8.64.3',
  generation: 4,
  secretHash: 'ab'.repeat(32),
  app: 'web',
  audiences: ['vault', 'chitchat'],
  createdAt: '2026-01-01T00:00:00.000Z',
  rotatedAt: '2026-01-01T00:00:00.000Z',
};

t.test('defaults: first registered audience, default ttl', async (t) => {
  t.same(tokenParams({}, identity.audiences), { audience: 'vault', ttlSeconds: TOKEN_TTL.default });
  t.same(tokenParams({}, []), { audience: DEFAULT_AUDIENCE, ttlSeconds: TOKEN_TTL.default });
});

t.test('audience and ttl within bounds are accepted', async (t) => {
  t.same(tokenParams({ audience: 'chitchat', ttl: '60' }, identity.audiences), {
    audience: 'chitchat',
    ttlSeconds: 60,
  });
  t.equal(tokenParams({ ttl: String(TOKEN_TTL.max) }, []).ttlSeconds, TOKEN_TTL.max);
});

t.test('out-of-bounds ttl and unregistered audiences are refused', async (t) => {
  for (const ttl of ['59', '3601', '-5', '1e3', '', '600.5', 'x', '99999999']) {
    t.throws(() => tokenParams({ ttl }, []), { code: 'INVALID_ARGUMENT', message: /ttl/ }, ttl);
  }
  t.throws(() => tokenParams({ audience: 'other' }, identity.audiences), {
    code: 'INVALID_ARGUMENT',
    message: /audience "other" is not registered for this sandbox \(registered: vault, chitchat\)/,
  });
  t.throws(() => tokenParams({ audience: 'vault' }, []), { code: 'INVALID_ARGUMENT' });
});

t.test('claims', async (t) => {
  const c = tokenClaims({
    issuer: 'bridgeward:node1',
    identity,
    audience: 'vault',
    ttlSeconds: 300,
    now: new Date('2026-01-01T00:00:10.900Z'),
    jti: 'j1',
  });
  t.same(c, {
    iss: 'bridgeward:node1',
    sub: 'sandbox:app-1',
    aud: 'vault',
    iat: 1767225610,
    nbf: 1767225610,
    exp: 1767225910,
    jti: 'j1',
    sandbox: 'app-1',
    app: 'web',
    generation: 4,
  });
  const noApp = { ...identity, app: null };
  const c2 = tokenClaims({
    issuer: 'i',
    identity: noApp,
    audience: 'a',
    ttlSeconds: 60,
    now: new Date(0),
    jti: 'j',
  });
  t.equal(c2.app, null, 'app is null, not missing, without one');
});
