// Workload identity end to end: the agent in a runner namespace, sandboxes calling the token
// server on the gateway over the bridge with curl, restarts (SIGTERM, SIGKILL) and IP reuse.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { SQLITE_FILE } from '../../src/store/open.js';
import type { LeaseStore } from '../../src/store/types.js';
import type { RegistrationResult } from '../../src/identity/registration.js';

const SUBNET = '10.8.64.0/24';
const ISSUER = 'http://10.8.64.1:7123';
const TOKEN_URL = `${ISSUER}/v1/token`;

interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** One HTTP GET with curl from inside a sandbox namespace (headers, body and status on stdout). */
async function curl(
  bed: Testbed,
  sb: Sandbox,
  url: string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const argv = ['curl', '-sS', '--max-time', '5', '-D', '-', '-w', '\n%{http_code}'];
  for (const [k, v] of Object.entries(headers)) argv.push('-H', `${k}: ${v}`);
  const r = await bed.exec(sb.netns, [...argv, url]);
  const split = r.stdout.indexOf('\r\n\r\n');
  const head = r.stdout.slice(0, split);
  const rest = r.stdout
    .slice(split + 4)
    .trimEnd()
    .split('\n');
  const status = Number(rest.pop());
  const hdrs: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m) hdrs[(m[1] as string).toLowerCase()] = m[2] as string;
  }
  return { status, headers: hdrs, body: JSON.parse(rest.join('\n')) as Record<string, unknown> };
}

function token(bed: Testbed, sb: Sandbox, secret: string, query = '', extra = {}) {
  return curl(bed, sb, TOKEN_URL + query, { authorization: `Bearer ${secret}`, ...extra });
}

async function verify(bed: Testbed, sb: Sandbox, jwt: string) {
  const jwks = (await curl(bed, sb, `${ISSUER}/.well-known/jwks.json`)).body as unknown;
  return jwtVerify(jwt, createLocalJWKSet(jwks as JSONWebKeySet), { issuer: ISSUER });
}

/** A runner with the agent and direct access to its lease store (the lease API's job elsewhere). */
async function runner(t: Test, extraFlags: Record<string, string> = {}) {
  const bed = await Testbed.create({ subnet: SUBNET });
  const flags = { subnet: SUBNET, ...extraFlags };
  let agent = AgentProcess.start(bed, flags);
  const all = [agent];
  let store: LeaseStore | null = null;
  t.teardown(async () => {
    await store?.close();
    for (const a of all) await a.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  store = openSqliteStore(join(agent.stateDir, SQLITE_FILE));
  return {
    bed,
    store,
    get agent() {
      return agent;
    },
    /** Stops the agent with `signal` and starts it again on the same state. */
    async restart(signal: NodeJS.Signals) {
      await agent.stop(signal);
      agent = AgentProcess.start(bed, flags, agent);
      all.push(agent);
      await agent.ready();
      return agent;
    },
    /** Every log line and stderr of every agent process so far. */
    allOutput: () => all.map((a) => JSON.stringify(a.logs) + a.stderr).join('\n'),
  };
}

t.test('a sandbox fetches a token that verifies against the JWKS', async (t) => {
  const r = await runner(t);
  // The runtime's flow: lease through the agent's API, start the sandbox with that address.
  const lease = await r.agent.json<{ ip: string }>(['lease', 'allocate', '--sandbox', 'app-1']);
  const sb = await r.bed.addSandbox({ ip: lease.ip });
  const status = await r.agent.json<{ features: Record<string, unknown> }>(['status']);
  t.equal(status.features.identity, TOKEN_URL, 'status shows the token URL');
  const secretFile = join(r.agent.dir, 'app-1.secret');
  const reg = await r.agent.json<RegistrationResult & { secretFile: string }>([
    'identity',
    'register',
    '--sandbox',
    'app-1',
    '--app',
    'web',
    '--audience',
    'chitchat',
    '--audience',
    'vault',
    '--secret-file',
    secretFile,
  ]);
  t.match(reg.secret, /^[A-Za-z0-9_-]{43}$/);
  t.equal(reg.tokenUrl, TOKEN_URL);
  t.same(reg.env, { MIREN_IDENTITY_TOKEN_SECRET: reg.secret, MIREN_IDENTITY_TOKEN_URL: TOKEN_URL });
  t.equal(readFileSync(secretFile, 'utf8'), reg.secret, 'secret file holds the secret');
  t.equal(statSync(secretFile).mode & 0o777, 0o600, 'secret file is 0600');

  const res = await token(r.bed, sb, reg.secret, '?audience=vault&ttl=300');
  t.equal(res.status, 200, JSON.stringify(res.body));
  const { payload, protectedHeader } = await verify(r.bed, sb, res.body.token as string);
  t.equal(protectedHeader.alg, 'EdDSA');
  t.match(payload, {
    iss: ISSUER,
    sub: 'sandbox:app-1',
    aud: 'vault',
    sandbox: 'app-1',
    app: 'web',
    generation: 1,
  });
  t.equal((payload.exp as number) - (payload.iat as number), 300);
  t.ok(payload.jti && payload.nbf === payload.iat, 'jti and nbf');

  const shown = await r.agent.json<Record<string, unknown>>([
    'identity',
    'show',
    '--sandbox',
    'app-1',
  ]);
  t.same(shown.audiences, ['chitchat', 'vault']);
  t.notOk('secret' in shown || 'secretHash' in shown, 'show never reveals the secret');
  const table = await r.agent.cli(['identity', 'show', '--sandbox', 'app-1']);
  t.match(table.stdout, new RegExp(`^ip: ${lease.ip.replaceAll('.', '\\.')}$`, 'm'), 'table');
  const twice = await r.agent.cli(['identity', 'register', '--sandbox', 'app-1']);
  t.equal(twice.code, 1);
  t.match(twice.stderr, /already has an identity; use identity rotate or identity revoke/);
  const bad = await r.agent.cli(['identity', 'register', '--sandbox', '../x']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /invalid sandbox id/);
  const ghost = await r.agent.cli(['identity', 'register', '--sandbox', 'ghost']);
  t.equal(ghost.code, 1);
  t.match(ghost.stderr, /sandbox ghost has no active lease/);
  t.notMatch(r.allOutput(), reg.secret, 'the secret is in no agent log line');
});

t.test('the same secret works after SIGTERM and SIGKILL restarts', async (t) => {
  const r = await runner(t);
  const lease = await r.agent.json<{ ip: string }>([
    'lease',
    'allocate',
    '--sandbox',
    'long-lived',
  ]);
  const sb = await r.bed.addSandbox({ ip: lease.ip });
  const reg = await r.agent.json<RegistrationResult>([
    'identity',
    'register',
    '--sandbox',
    'long-lived',
  ]);
  const first = await token(r.bed, sb, reg.secret);
  t.equal(first.status, 200);
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    await r.restart(signal);
    const again = await token(r.bed, sb, reg.secret);
    t.equal(again.status, 200, `token after ${signal} restart without re-registration`);
    const { payload } = await verify(r.bed, sb, again.body.token as string);
    t.equal(payload.sub, 'sandbox:long-lived');
    await verify(r.bed, sb, first.body.token as string);
    t.pass(`a token from before the ${signal} restart still verifies`);
  }
  t.notMatch(r.allOutput(), reg.secret);
});

t.test('rotate, rotate-key and revoke take effect at once', async (t) => {
  const r = await runner(t);
  const sb = await r.bed.addSandbox({ ip: '10.8.64.6' });
  await r.store.claim({ sandbox: 'app-6', ip: '10.8.64.6', mac: sb.mac, at: new Date() });
  const reg = await r.agent.json<RegistrationResult>([
    'identity',
    'register',
    '--sandbox',
    'app-6',
  ]);
  const before = await token(r.bed, sb, reg.secret);
  const secretFile = join(r.agent.dir, 'app-6.secret');
  const rot = await r.agent.json<RegistrationResult>([
    'identity',
    'rotate',
    '--sandbox',
    'app-6',
    '--secret-file',
    secretFile,
  ]);
  t.equal(readFileSync(secretFile, 'utf8'), rot.secret);
  t.equal((await token(r.bed, sb, reg.secret)).status, 403, 'old secret refused');
  t.equal((await token(r.bed, sb, rot.secret)).status, 200, 'new secret works');
  const kid = decodeProtectedHeader(before.body.token as string).kid;
  const keys = await r.agent.json<{ kid: string; retired: { kid: string }[] }>([
    'identity',
    'rotate-key',
  ]);
  t.not(keys.kid, kid);
  t.same(
    keys.retired.map((k) => k.kid),
    [kid],
  );
  const after = await token(r.bed, sb, rot.secret);
  t.equal(decodeProtectedHeader(after.body.token as string).kid, keys.kid);
  await verify(r.bed, sb, before.body.token as string);
  await verify(r.bed, sb, after.body.token as string);
  t.pass('tokens signed by the retired and the new key both verify');
  await r.agent.json(['identity', 'revoke', '--sandbox', 'app-6']);
  const revoked = await token(r.bed, sb, rot.secret);
  t.equal(revoked.status, 404);
  t.equal(revoked.body.error, 'UNKNOWN_IDENTITY');
  t.notMatch(r.allOutput(), rot.secret);
  t.notMatch(r.allOutput(), reg.secret);
});

t.test('IP reuse: the old secret from that address is refused, the new owner works', async (t) => {
  const r = await runner(t);
  const oldSb = await r.bed.addSandbox({ ip: '10.8.64.7' });
  await r.store.claim({ sandbox: 'old', ip: '10.8.64.7', mac: oldSb.mac, at: new Date() });
  const old = await r.agent.json<RegistrationResult>(['identity', 'register', '--sandbox', 'old']);
  t.equal((await token(r.bed, oldSb, old.secret)).status, 200);
  // The runtime's order: the old sandbox goes, its lease is released, the address is leased to
  // the new sandbox, which then starts with it (a sandbox using an address before it is leased
  // would rightly be quarantined by the detector).
  await r.bed.removeSandbox(oldSb);
  await r.store.release('old', new Date());
  t.equal(await r.store.identity('old'), null, 'the release removed the identity');
  const lease = await r.store.claim({ sandbox: 'new', ip: '10.8.64.7', mac: null, at: new Date() });
  t.equal(lease.lease.generation, 2);
  const newSb = await r.bed.addSandbox({ ip: '10.8.64.7' });
  const early = await token(r.bed, newSb, old.secret);
  t.equal(early.status, 404);
  t.equal(early.body.error, 'UNKNOWN_IDENTITY', 'new owner not registered yet: retryable');
  t.equal(early.body.retryable, true);
  t.equal(early.headers['retry-after'], '2');
  const fresh = await r.agent.json<RegistrationResult>([
    'identity',
    'register',
    '--sandbox',
    'new',
  ]);
  const refused = await token(r.bed, newSb, old.secret);
  t.equal(refused.status, 403, 'the old secret never passes for the new owner');
  t.same(refused.body.error, 'INVALID_SECRET');
  t.equal(refused.body.retryable, false);
  t.notOk(refused.headers['retry-after']);
  const ok = await token(r.bed, newSb, fresh.secret);
  t.equal(ok.status, 200);
  const { payload } = await verify(r.bed, newSb, ok.body.token as string);
  t.match(payload, { sub: 'sandbox:new', generation: 2 });
});

t.test("another's secret, a proxied request, a MAC mismatch, an unleased address", async (t) => {
  const r = await runner(t);
  const a = await r.bed.addSandbox({ ip: '10.8.64.8' });
  const b = await r.bed.addSandbox({ ip: '10.8.64.9' });
  await r.store.claim({ sandbox: 'a', ip: '10.8.64.8', mac: a.mac, at: new Date() });
  await r.store.claim({ sandbox: 'b', ip: '10.8.64.9', mac: b.mac, at: new Date() });
  const ra = await r.agent.json<RegistrationResult>(['identity', 'register', '--sandbox', 'a']);
  await r.agent.json<RegistrationResult>(['identity', 'register', '--sandbox', 'b']);
  const stolen = await token(r.bed, b, ra.secret);
  t.equal(stolen.status, 403);
  t.equal(stolen.body.error, 'INVALID_SECRET');
  const proxied = await token(r.bed, a, ra.secret, '', { 'x-forwarded-for': '10.8.64.8' });
  t.equal(proxied.status, 400);
  t.match(proxied.body.message as string, /proxied requests/);
  t.equal((await token(r.bed, a, ra.secret)).status, 200, 'a itself still works');
  // A lease bound to another interface's MAC: the bridge sees the address elsewhere.
  const d = await r.bed.addSandbox({ ip: '10.8.64.12' });
  await r.store.claim({ sandbox: 'd', ip: '10.8.64.12', mac: '02:00:00:00:0d:0d', at: new Date() });
  const rd = await r.agent.json<RegistrationResult>(['identity', 'register', '--sandbox', 'd']);
  const elsewhere = await token(r.bed, d, rd.secret);
  t.equal(elsewhere.status, 403);
  t.equal(elsewhere.body.error, 'BINDING_MISMATCH');
  t.match(
    elsewhere.body.message as string,
    /is seen at MAC .* but its lease is bound to 02:00:00:00:0d:0d/,
  );
  t.equal(elsewhere.headers['retry-after'], '2');
  const c = await r.bed.addSandbox({ ip: '10.8.64.11' });
  const unleased = await token(r.bed, c, ra.secret);
  t.equal(unleased.status, 404);
  t.same(unleased.body, {
    error: 'UNKNOWN_ADDRESS',
    message: 'no sandbox holds a lease on 10.8.64.11 (yet)',
    retryable: true,
  });
  t.equal(unleased.headers['retry-after'], '2');
  t.notMatch(r.allOutput(), ra.secret);
});

t.test('token files: written for registered sandboxes, removed on revoke', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-tokens-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokens = join(dir, 'tokens');
  const r = await runner(t, { 'identity-token-dir': tokens, 'sweep-seconds': '1' });
  const sb = await r.bed.addSandbox({ ip: '10.8.64.10' });
  await r.store.claim({ sandbox: 'file-app', ip: '10.8.64.10', mac: sb.mac, at: new Date() });
  const file = join(tokens, 'file-app', 'token');
  t.notOk(existsSync(file), 'no file before registration');
  await r.agent.json(['identity', 'register', '--sandbox', 'file-app', '--audience', 'files']);
  await until(() => existsSync(file), 'the token file appears');
  t.equal(statSync(tokens).mode & 0o777, 0o700, 'base directory is 0700');
  t.equal(statSync(file).mode & 0o777, 0o644, 'token file is 0644');
  const { payload } = await verify(r.bed, sb, readFileSync(file, 'utf8'));
  t.match(payload, { sub: 'sandbox:file-app', aud: 'files', generation: 1 });
  t.equal((payload.exp as number) - (payload.iat as number), 600);
  await r.agent.json(['identity', 'revoke', '--sandbox', 'file-app']);
  await until(() => !existsSync(join(tokens, 'file-app')), 'the directory goes with the identity');
  t.pass('removed after revoke');
});

async function until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('--identity-listen off: no token server, identity verbs say so', async (t) => {
  const r = await runner(t, { 'identity-listen': 'off' });
  const status = await r.agent.json<{ features: Record<string, unknown> }>(['status']);
  t.equal(status.features.identity, 'off');
  const reg = await r.agent.cli(['identity', 'register', '--sandbox', 'x']);
  t.equal(reg.code, 1);
  t.match(
    reg.stderr,
    /^bridgeward: workload identity is off on this agent \(--identity-listen off\)$/m,
  );
  const rk = await r.agent.cli(['identity', 'rotate-key']);
  t.match(rk.stderr, /workload identity is off/);
});
