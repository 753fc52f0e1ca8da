// The token server and registry over a real SQLite store and real keys on disk; requests are
// injected with a chosen source address (the integration test does the same over the network).
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createLogger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { LeaseStore } from '../../src/store/types.js';
import type { Counter } from 'prom-client';
import { createMetrics } from '../../src/metrics.js';
import type { LiveEvidence, LiveSource } from '../../src/observe/types.js';
import { FailureLimiter } from '../../src/identity/failure-limiter.js';
import { NodeKeys } from '../../src/identity/node-keys.js';
import { IdentityRegistry } from '../../src/identity/registry.js';
import { TOKEN_TTL } from '../../src/identity/claims.js';
import {
  buildTokenServer,
  startTokenServer,
  type TokenErrorBody,
} from '../../src/identity/token-server.js';
import { rejectsCode } from '../harness/expect-code.js';

const ISSUER = 'http://10.8.64.1:7123';
const URL = `${ISSUER}/v1/token`;

async function setup(t: Test, live?: LiveSource, requests?: Counter<'result'>) {
  const dir = mkdtempSync(join(tmpdir(), 'bw-identity-'));
  const store: LeaseStore = openSqliteStore(join(dir, 'leases.db'));
  const keyFile = join(dir, 'identity-keys.json');
  const keys = await NodeKeys.open(keyFile, new Date(), TOKEN_TTL.max);
  let logText = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logText += chunk.toString();
      cb();
    },
  });
  const log = createLogger('debug', sink);
  const limiter = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, maxSources: 100 });
  const server = buildTokenServer({
    store,
    keys,
    issuer: ISSUER,
    limiter,
    log,
    ...(live ? { live } : {}),
    ...(requests ? { requests } : {}),
  });
  const registry = new IdentityRegistry(store, URL);
  t.teardown(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const get = async (
    source: string,
    secret: string | null,
    query = '',
    headers: Record<string, string> = {},
  ) => {
    const res = await server.inject({
      method: 'GET',
      url: `/v1/token${query}`,
      remoteAddress: source,
      headers: { ...(secret === null ? {} : { authorization: `Bearer ${secret}` }), ...headers },
    });
    return { status: res.statusCode, headers: res.headers, body: res.json() };
  };
  const jwks = async () =>
    createLocalJWKSet((await server.inject({ url: '/.well-known/jwks.json' })).json());
  return { dir, store, keys, keyFile, registry, get, jwks, log, limiter, logs: () => logText };
}

const lease = (store: LeaseStore, sandbox: string, ip: string) =>
  store.claim({ sandbox, ip, mac: null, at: new Date() });

t.test('a registered sandbox gets a token that verifies against the JWKS', async (t) => {
  const s = await setup(t);
  await lease(s.store, 'app-1', '10.8.64.3');
  const reg = await s.registry.register(
    { sandbox: 'app-1', app: 'web', audiences: ['vault', 'chitchat'] },
    new Date(),
  );
  t.equal(reg.tokenUrl, URL);
  t.same(reg.env, { MIREN_IDENTITY_TOKEN_SECRET: reg.secret, MIREN_IDENTITY_TOKEN_URL: URL });
  const stored = await s.store.identity('app-1');
  t.not(stored?.secretHash, reg.secret, 'the store keeps a hash');
  t.notMatch(JSON.stringify(stored), reg.secret);

  const r = await s.get('10.8.64.3', reg.secret, '?audience=chitchat&ttl=120');
  t.equal(r.status, 200);
  t.equal(r.body.ttlSeconds, 120);
  const { payload, protectedHeader } = await jwtVerify(r.body.token, await s.jwks(), {
    issuer: ISSUER,
    audience: 'chitchat',
  });
  t.equal(protectedHeader.alg, 'EdDSA');
  t.equal(protectedHeader.kid, s.keys.activeKid);
  t.match(payload, {
    iss: ISSUER,
    sub: 'sandbox:app-1',
    aud: 'chitchat',
    sandbox: 'app-1',
    app: 'web',
    generation: 1,
  });
  t.equal((payload.exp as number) - (payload.iat as number), 120);
  t.equal(payload.nbf, payload.iat);
  t.match(payload.jti, /^[0-9a-f-]{36}$/);
  t.equal(r.body.expiresAt, new Date((payload.exp as number) * 1000).toISOString());
  const def = await s.get('10.8.64.3', reg.secret);
  t.equal(def.status, 200);
  const p2 = (await jwtVerify(def.body.token, await s.jwks())).payload;
  t.equal(p2.aud, 'vault', 'default audience is the first registered one');
  t.equal((p2.exp as number) - (p2.iat as number), TOKEN_TTL.default);
  t.not(p2.jti, payload.jti, 'unique jti');
  t.notMatch(s.logs(), reg.secret, 'the secret is in no log line');
  t.match(s.logs(), /"msg":"token issued"/);
});

t.test('retryable refusals: unknown address, not registered yet', async (t) => {
  const s = await setup(t);
  const a = await s.get('10.8.64.9', 'whatever');
  t.equal(a.status, 404);
  t.same(a.body, {
    error: 'UNKNOWN_ADDRESS',
    message: 'no sandbox holds a lease on 10.8.64.9 (yet)',
    retryable: true,
  });
  t.equal(a.headers['retry-after'], '2');
  await lease(s.store, 'app-2', '10.8.64.4');
  const b = await s.get('10.8.64.4', 'whatever');
  t.equal(b.status, 404);
  t.equal(b.body.error, 'UNKNOWN_IDENTITY');
  t.equal(b.body.retryable, true);
  t.equal(b.headers['retry-after'], '2');
  for (let i = 0; i < 5; i++) t.equal((await s.get('10.8.64.4', 'x')).status, 404, 'not limited');
});

t.test('final refusals, the failure limit, and X-Forwarded-For', async (t) => {
  const s = await setup(t);
  await lease(s.store, 'app-1', '10.8.64.3');
  const reg = await s.registry.register({ sandbox: 'app-1', app: null, audiences: [] }, new Date());
  const bad = await s.get('10.8.64.3', 'not-the-secret');
  t.equal(bad.status, 403);
  t.same(bad.body.error, 'INVALID_SECRET');
  t.equal(bad.body.retryable, false);
  t.notOk(bad.headers['retry-after'], 'no Retry-After on a final refusal');
  const xff = await s.get('10.8.64.3', reg.secret, '', { 'x-forwarded-for': '10.8.64.3' });
  t.equal(xff.status, 400);
  t.match(xff.body.message, /proxied requests/);
  const none = await s.get('10.8.64.3', null);
  t.equal(none.status, 403);
  t.match(none.body.message, /missing "Authorization: Bearer <secret>"/);
  const limited = await s.get('10.8.64.3', reg.secret);
  t.equal(limited.status, 429, 'after 3 failures even the right secret waits');
  t.same(limited.body, {
    error: 'RATE_LIMITED',
    message: 'too many failed requests from 10.8.64.3',
    retryable: true,
  } satisfies TokenErrorBody);
  t.ok(Number(limited.headers['retry-after']) > 0);
  t.notMatch(s.logs(), reg.secret);
  t.notMatch(s.logs(), 'not-the-secret', 'not even a wrong secret is logged');
});

t.test('query bounds are checked after authentication', async (t) => {
  const s = await setup(t);
  await lease(s.store, 'app-1', '10.8.64.3');
  const reg = await s.registry.register(
    { sandbox: 'app-1', app: null, audiences: ['a'] },
    new Date(),
  );
  const ttl = await s.get('10.8.64.3', reg.secret, '?ttl=5');
  t.equal(ttl.status, 400);
  t.match(ttl.body.message, /ttl "5": expected whole seconds 60\.\.3600/);
  const aud = await s.get('10.8.64.3', reg.secret, '?audience=b');
  t.equal(aud.status, 400);
  t.match(aud.body.message, /audience "b" is not registered/);
  const extra = await s.get('10.8.64.3', reg.secret, '?bogus=1');
  t.equal(extra.status, 200, 'unknown query parameters are ignored');
});

t.test(
  'IP reuse: a released lease revokes, the new owner never passes with the old secret',
  async (t) => {
    const s = await setup(t);
    await lease(s.store, 'old', '10.8.64.3');
    const old = await s.registry.register({ sandbox: 'old', app: null, audiences: [] }, new Date());
    await s.store.release('old', new Date());
    t.equal(await s.store.identity('old'), null, 'release removed the identity');
    await lease(s.store, 'new', '10.8.64.3');
    const fresh = await s.registry.register(
      { sandbox: 'new', app: null, audiences: [] },
      new Date(),
    );
    t.equal(fresh.generation, 2);
    const refused = await s.get('10.8.64.3', old.secret);
    t.equal(refused.status, 403);
    t.equal(refused.body.error, 'INVALID_SECRET');
    const ok = await s.get('10.8.64.3', fresh.secret);
    t.equal(ok.status, 200);
    const { payload } = await jwtVerify(ok.body.token, await s.jwks());
    t.equal(payload.sub, 'sandbox:new');
    t.equal(payload.generation, 2);
  },
);

t.test("another sandbox's secret from its own address is refused", async (t) => {
  const s = await setup(t);
  await lease(s.store, 'a', '10.8.64.3');
  await lease(s.store, 'b', '10.8.64.4');
  const a = await s.registry.register({ sandbox: 'a', app: null, audiences: [] }, new Date());
  await s.registry.register({ sandbox: 'b', app: null, audiences: [] }, new Date());
  const r = await s.get('10.8.64.4', a.secret);
  t.equal(r.status, 403);
  t.equal(r.body.error, 'INVALID_SECRET');
});

t.test('registry: conflicts, rotate, revoke, show', async (t) => {
  const s = await setup(t);
  const now = new Date();
  await rejectsCode(
    t,
    s.registry.register({ sandbox: 'ghost', app: null, audiences: [] }, now),
    'UNKNOWN_SANDBOX',
  );
  await lease(s.store, 'a', '10.8.64.3');
  const first = await s.registry.register({ sandbox: 'a', app: 'x', audiences: [] }, now);
  await rejectsCode(
    t,
    s.registry.register({ sandbox: 'a', app: null, audiences: [] }, now),
    'CONFLICT',
    'a second register is refused',
  );
  await lease(s.store, 'c', '10.8.64.5');
  const racing = await Promise.allSettled([
    s.registry.register({ sandbox: 'c', app: null, audiences: [] }, now),
    s.registry.register({ sandbox: 'c', app: null, audiences: [] }, now),
  ]);
  t.same(
    racing.map((r) => r.status),
    ['fulfilled', 'rejected'],
    'of two concurrent registers exactly one wins; its secret is the one that works',
  );
  const winner = racing[0] as PromiseFulfilledResult<{ secret: string }>;
  t.equal((await s.get('10.8.64.5', winner.value.secret)).status, 200);
  const rotated = await s.registry.rotate('a', new Date());
  t.not(rotated.secret, first.secret);
  t.equal(rotated.app, 'x', 'rotation keeps the app');
  t.equal((await s.get('10.8.64.3', first.secret)).status, 403, 'old secret stops at once');
  t.equal((await s.get('10.8.64.3', rotated.secret)).status, 200, 'new secret works');
  const view = await s.registry.show('a');
  t.notOk('secretHash' in view);
  t.equal(view.sandbox, 'a');
  await s.registry.revoke('a', new Date());
  t.equal((await s.get('10.8.64.3', rotated.secret)).body.error, 'UNKNOWN_IDENTITY');
  await rejectsCode(t, s.registry.revoke('a', new Date()), 'UNKNOWN_IDENTITY');
  await rejectsCode(t, s.registry.rotate('a', new Date()), 'UNKNOWN_IDENTITY');
  await rejectsCode(t, s.registry.show('nobody'), 'UNKNOWN_SANDBOX');
  const history = await s.store.history({ sandbox: 'a' });
  t.notMatch(JSON.stringify(history), first.secret, 'no secret in the history');
});

t.test('keys persist across a reopen; rotation keeps the old key published', async (t) => {
  const s = await setup(t);
  t.equal(statSync(s.keyFile).mode & 0o777, 0o600, 'key file is 0600');
  await lease(s.store, 'a', '10.8.64.3');
  const reg = await s.registry.register({ sandbox: 'a', app: null, audiences: [] }, new Date());
  const before = (await s.get('10.8.64.3', reg.secret)).body.token as string;
  const oldKid = s.keys.activeKid;
  const reopened = await NodeKeys.open(s.keyFile, new Date(), TOKEN_TTL.max);
  t.equal(reopened.activeKid, oldKid, 'same key after a restart');
  const rotation = await s.keys.rotate(new Date());
  t.not(rotation.kid, oldKid);
  t.same(
    rotation.retired.map((k) => k.kid),
    [oldKid],
  );
  const after = (await s.get('10.8.64.3', reg.secret)).body.token as string;
  t.equal(decodeProtectedHeader(after).kid, rotation.kid, 'new tokens use the new key');
  const set = await s.jwks();
  await jwtVerify(before, set);
  await jwtVerify(after, set);
  t.pass('tokens from before and after the rotation both verify');
  const again = await NodeKeys.open(s.keyFile, new Date(), TOKEN_TTL.max);
  t.equal(again.activeKid, rotation.kid, 'the rotation was persisted');
  t.same(
    again.jwks(new Date()).keys.map((k) => k.kid),
    [rotation.kid, oldKid],
  );
  t.same(
    again.jwks(new Date(Date.now() + (TOKEN_TTL.max + 1) * 1000)).keys.map((k) => k.kid),
    [rotation.kid],
    'the retired key leaves once its last token has expired',
  );
});

t.test('a lease bound to a MAC and port only passes where the bridge sees it', async (t) => {
  const seen = new Map<string, LiveEvidence>();
  const live: LiveSource = { name: 'netlink-neigh', live: async () => seen };
  const s = await setup(t, live);
  await s.store.claim({ sandbox: 'a', ip: '10.8.64.3', mac: '02:00:00:00:00:03', at: new Date() });
  const reg = await s.registry.register({ sandbox: 'a', app: null, audiences: [] }, new Date());
  t.equal((await s.get('10.8.64.3', reg.secret)).status, 200, 'nothing seen yet: not checked');
  const at = (mac: string, ifindexes: number[]): LiveEvidence => ({
    ip: '10.8.64.3',
    macs: [mac],
    ifindexes,
    sources: ['netlink-neigh'],
    lastSeen: Date.now(),
  });
  seen.set('10.8.64.3', at('02:00:00:00:00:99', [4]));
  const r = await s.get('10.8.64.3', reg.secret);
  t.equal(r.status, 403);
  t.equal(r.body.error, 'BINDING_MISMATCH');
  t.equal(r.body.retryable, true);
  t.equal(r.headers['retry-after'], '2');
  seen.set('10.8.64.3', at('02:00:00:00:00:03', [4]));
  t.equal((await s.get('10.8.64.3', reg.secret)).status, 200, 'the lease MAC: passes');
  await s.store.bind('a', { ifindex: 5 }, new Date());
  t.equal((await s.get('10.8.64.3', reg.secret)).body.error, 'BINDING_MISMATCH', 'wrong port');
  seen.set('10.8.64.3', at('02:00:00:00:00:03', [5]));
  t.equal((await s.get('10.8.64.3', reg.secret)).status, 200, 'MAC and port match');
});

t.test('a listen address that is not local is a clear error', async (t) => {
  const s = await setup(t);
  const deps = { store: s.store, keys: s.keys, issuer: ISSUER, limiter: s.limiter, log: s.log };
  const e = await rejectsCode(
    t,
    startTokenServer(deps, { host: '192.0.2.1', port: 7123 }),
    'INVALID_ARGUMENT',
  );
  t.match((e as Error).message, /^--identity-listen 192\.0\.2\.1:7123: EADDRNOTAVAIL$/);
});

t.test('requests are counted by result', async (t) => {
  const metrics = createMetrics();
  const s = await setup(t, undefined, metrics.tokenRequests);
  await lease(s.store, 'a', '10.8.64.3');
  const reg = await s.registry.register({ sandbox: 'a', app: null, audiences: [] }, new Date());
  await s.get('10.8.64.3', reg.secret);
  await s.get('10.8.64.3', reg.secret);
  await s.get('10.8.64.3', 'wrong');
  await s.get('10.8.64.9', reg.secret);
  const text = await metrics.registry.getSingleMetricAsString('bridgeward_token_requests_total');
  t.match(text, /bridgeward_token_requests_total\{result="ok"\} 2/);
  t.match(text, /bridgeward_token_requests_total\{result="INVALID_SECRET"\} 1/);
  t.match(text, /bridgeward_token_requests_total\{result="UNKNOWN_ADDRESS"\} 1/);
});
