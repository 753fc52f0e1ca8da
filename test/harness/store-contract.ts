/**
 * The behaviour every `LeaseStore` backend must show, as one tap suite run against a fresh store
 * from `open()`. The SQLite and etcd tests both run it, so the two backends cannot drift apart.
 *
 * @example
 * storeContract(t, () => openSqliteStore(join(dir, `${n++}.db`)));
 */
import type { Test } from 'tap';
import { isBridgewardError } from '../../src/errors.js';
import { rejectsCode } from './expect-code.js';
import type { Identity, LeaseStore } from '../../src/store/types.js';

const T0 = new Date('2026-03-27T16:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** Registers the contract subtests on `t`; each gets a fresh store from `open`. */
export function storeContract(t: Test, open: () => Promise<LeaseStore>): void {
  const fresh = async (t: Test) => {
    const store = await open();
    t.teardown(() => store.close());
    return store;
  };

  t.test('claim gives a lease, moves the cursor and records an event', async (t) => {
    const s = await fresh(t);
    const { lease, existing } = await s.claim({
      sandbox: 'a',
      ip: '10.8.64.2',
      mac: '02:00:00:00:00:0a',
      at: at(0),
    });
    t.equal(existing, false);
    t.match(lease, { sandbox: 'a', ip: '10.8.64.2', mac: '02:00:00:00:00:0a', state: 'active' });
    t.equal(lease.generation, 1);
    t.equal(lease.allocatedAt, at(0).toISOString());
    const snap = await s.snapshot();
    t.equal(snap.cursor, '10.8.64.2');
    t.same(
      snap.leases.map((l) => l.ip),
      ['10.8.64.2'],
    );
    const h = await s.history({ ip: '10.8.64.2' });
    t.same(
      h.map((e) => [e.kind, e.sandbox]),
      [['allocated', 'a']],
    );
    t.same(await s.leaseBySandbox('a'), lease);
    t.same(await s.leaseByIp('10.8.64.2'), lease);
    t.equal(await s.leaseBySandbox('b'), null);
    t.equal(await s.leaseByIp('10.8.64.3'), null);
  });

  t.test('claim is idempotent per sandbox and refuses a taken address', async (t) => {
    const s = await fresh(t);
    const first = await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: at(0) });
    const again = await s.claim({ sandbox: 'a', ip: '10.8.64.9', mac: null, at: at(1) });
    t.equal(again.existing, true);
    t.same(again.lease, first.lease, 'same lease back, the requested address is ignored');
    await rejectsCode(
      t,
      s.claim({ sandbox: 'b', ip: '10.8.64.2', mac: null, at: at(2) }),
      'CONFLICT',
    );
    t.equal((await s.snapshot()).leases.length, 1);
  });

  t.test('a claim records the allocating node', async (t) => {
    const s = await fresh(t);
    const { lease } = await s.claim({
      sandbox: 'a',
      ip: '10.8.64.2',
      mac: null,
      node: 'runner-1',
      at: at(0),
    });
    t.equal(lease.node, 'runner-1');
    t.equal((await s.leaseBySandbox('a'))?.node, 'runner-1');
    await s.claim({ sandbox: 'b', ip: '10.8.64.3', mac: null, at: at(0) });
    t.equal((await s.leaseBySandbox('b'))?.node, null);
  });

  t.test('release cools the address; the next owner gets generation + 1', async (t) => {
    const s = await fresh(t);
    await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: at(0) });
    const released = await s.release('a', at(5), { by: 'test' });
    t.equal(released.ip, '10.8.64.2');
    const snap = await s.snapshot();
    t.same(snap.leases, []);
    t.same(snap.cooling, [
      { ip: '10.8.64.2', sandbox: 'a', generation: 1, releasedAt: at(5).toISOString() },
    ]);
    await rejectsCode(t, s.release('a', at(6)), 'UNKNOWN_SANDBOX');
    const next = await s.claim({ sandbox: 'b', ip: '10.8.64.2', mac: null, at: at(7) });
    t.equal(next.lease.generation, 2);
    t.same((await s.snapshot()).cooling, [], 'no longer cooling once leased again');
    const kinds = (await s.history({ ip: '10.8.64.2' })).map((e) => e.kind);
    t.same(kinds, ['allocated', 'released', 'allocated']);
    const rel = (await s.history({ sandbox: 'a' })).find((e) => e.kind === 'released');
    t.match(rel?.detail, { by: 'test', generation: 1 });
  });

  t.test(
    'quarantine blocks claims, records once, expires, and is cleared on request',
    async (t) => {
      const s = await fresh(t);
      const q = {
        ip: '10.8.64.4',
        reason: 'live-unleased',
        evidence: { macs: ['02:00:00:00:00:04'] },
        since: at(0).toISOString(),
        until: null,
      };
      await s.quarantine(q, at(0));
      await s.quarantine({ ...q, evidence: { macs: ['02:00:00:00:00:05'] } }, at(1));
      const snap = await s.snapshot();
      t.same(snap.quarantine, [{ ...q, evidence: { macs: ['02:00:00:00:00:05'] } }], 'refreshed');
      t.same(
        (await s.history({ ip: '10.8.64.4' })).map((e) => e.kind),
        ['quarantined'],
        'one event for a refreshed quarantine',
      );
      await rejectsCode(
        t,
        s.claim({ sandbox: 'a', ip: '10.8.64.4', mac: null, at: at(2) }),
        'CONFLICT',
      );
      await rejectsCode(t, s.clearQuarantine('10.8.64.5', at(3), {}), 'UNKNOWN_ADDRESS');
      await s.clearQuarantine('10.8.64.4', at(3), { by: 'operator' });
      t.same((await s.snapshot()).quarantine, []);
      const h = await s.history({ ip: '10.8.64.4' });
      t.match(h.at(-1), { kind: 'quarantine-cleared', detail: { by: 'operator' } });
      await s.claim({ sandbox: 'a', ip: '10.8.64.4', mac: null, at: at(4) });

      const timed = { ...q, ip: '10.8.64.6', until: at(10).toISOString() };
      await s.quarantine(timed, at(5));
      await rejectsCode(
        t,
        s.claim({ sandbox: 'b', ip: '10.8.64.6', mac: null, at: at(9) }),
        'CONFLICT',
      );
      const ok = await s.claim({ sandbox: 'b', ip: '10.8.64.6', mac: null, at: at(11) });
      t.equal(ok.lease.ip, '10.8.64.6', 'an expired quarantine no longer blocks');
    },
  );

  t.test('revision: moved by every write, not by reads', async (t) => {
    const s = await fresh(t);
    const r0 = await s.revision();
    await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: at(0) });
    const r1 = await s.revision();
    t.not(r1, r0, 'a claim moves it');
    await s.putPort({ proto: 'tcp', hostPort: 7000, sandbox: 'a', port: 80 }, at(1));
    const r2 = await s.revision();
    t.not(r2, r1, 'a node port moves it');
    await s.snapshot();
    await s.listPorts();
    await s.leaseBySandbox('a');
    t.equal(await s.revision(), r2, 'reads do not');
  });

  t.test('bind records the MAC and port once', async (t) => {
    const s = await fresh(t);
    await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: at(0) });
    const b = await s.bind('a', { mac: '02:00:00:00:00:0a', ifindex: 7, ifname: 'veth7' }, at(1));
    t.match(b, { mac: '02:00:00:00:00:0a', ifindex: 7, ifname: 'veth7', generation: 1 });
    await s.bind('a', { ifindex: 7 }, at(2));
    t.same(
      (await s.history({ sandbox: 'a' })).map((e) => e.kind),
      ['allocated', 'bound'],
    );
    await rejectsCode(t, s.bind('zz', { ifindex: 1 }, at(3)), 'UNKNOWN_SANDBOX');
  });

  t.test('a port binding ends with null and keeps the MAC; the next port is bound', async (t) => {
    const s = await fresh(t);
    await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: '02:00:00:00:00:0a', at: at(0) });
    await s.bind('a', { ifindex: 7, ifname: 'veth7' }, at(1));
    const gone = await s.bind('a', { ifindex: null, ifname: null }, at(2));
    t.match(gone, { mac: '02:00:00:00:00:0a', ifindex: null, ifname: null });
    t.match(await s.leaseBySandbox('a'), { ifindex: null, ifname: null });
    const moved = await s.bind('a', { ifindex: 12 }, at(3));
    t.match(moved, { mac: '02:00:00:00:00:0a', ifindex: 12 });
    t.same(
      (await s.history({ sandbox: 'a' })).map((e) => [e.kind, e.detail.ifindex ?? null]),
      [
        ['allocated', null],
        ['bound', 7],
        ['bound', null],
        ['bound', 12],
      ],
    );
  });

  t.test('history: filters, limit keeps the newest, oldest first', async (t) => {
    const s = await fresh(t);
    for (let i = 0; i < 5; i++) {
      await s.appendEvent({
        at: at(i).toISOString(),
        kind: 'finding',
        ip: '10.8.64.9',
        sandbox: null,
        detail: { i },
      });
    }
    await s.appendEvent({
      at: at(9).toISOString(),
      kind: 'finding',
      ip: '10.8.64.8',
      sandbox: null,
      detail: {},
    });
    const last2 = await s.history({ ip: '10.8.64.9', limit: 2 });
    t.same(
      last2.map((e) => e.detail.i),
      [3, 4],
    );
    t.ok((last2[0]?.id ?? 0) < (last2[1]?.id ?? 0), 'ids increase');
    t.equal((await s.history({})).length, 6);
  });

  t.test('ports: need a lease, refuse another owner, go with the release', async (t) => {
    const s = await fresh(t);
    await rejectsCode(
      t,
      s.putPort({ proto: 'tcp', hostPort: 8080, sandbox: 'a', port: 80 }, at(0)),
      'UNKNOWN_SANDBOX',
    );
    await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: at(0) });
    await s.claim({ sandbox: 'b', ip: '10.8.64.3', mac: null, at: at(0) });
    await s.putPort({ proto: 'tcp', hostPort: 8080, sandbox: 'a', port: 80 }, at(1));
    await s.putPort({ proto: 'tcp', hostPort: 8080, sandbox: 'a', port: 81 }, at(2));
    await s.putPort({ proto: 'udp', hostPort: 8080, sandbox: 'b', port: 53 }, at(2));
    await rejectsCode(
      t,
      s.putPort({ proto: 'tcp', hostPort: 8080, sandbox: 'b', port: 80 }, at(3)),
      'PORT_IN_USE',
    );
    t.same(await s.listPorts(), [
      { proto: 'tcp', hostPort: 8080, sandbox: 'a', port: 81 },
      { proto: 'udp', hostPort: 8080, sandbox: 'b', port: 53 },
    ]);
    t.same(await s.removePort('udp', 8080, at(4)), {
      proto: 'udp',
      hostPort: 8080,
      sandbox: 'b',
      port: 53,
    });
    await rejectsCode(t, s.removePort('udp', 8080, at(5)), 'UNKNOWN_PORT');
    await s.release('a', at(6));
    t.same(await s.listPorts(), [], 'released with the lease');
  });

  t.test('identities: need a lease, are replaced, go with the release', async (t) => {
    const s = await fresh(t);
    const id: Identity = {
      sandbox: 'a',
      ip: '10.8.64.2',
      generation: 1,
      secretHash: 'ab'.repeat(32),
      app: 'meet',
      audiences: ['api'],
      createdAt: at(1).toISOString(),
      rotatedAt: at(1).toISOString(),
    };
    await rejectsCode(t, s.putIdentity(id, at(0)), 'UNKNOWN_SANDBOX');
    await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: at(0) });
    await s.putIdentity(id, at(1));
    t.same(await s.identity('a'), id);
    const rotated = { ...id, secretHash: 'cd'.repeat(32), rotatedAt: at(2).toISOString() };
    await s.putIdentity(rotated, at(2));
    t.same(await s.identity('a'), rotated);
    t.equal(await s.removeIdentity('a', at(3)), true);
    t.equal(await s.removeIdentity('a', at(3)), false);
    t.equal(await s.identity('a'), null);
    await s.putIdentity(id, at(4));
    await s.release('a', at(5));
    t.equal(await s.identity('a'), null, 'released with the lease');
    const h = await s.history({ sandbox: 'a' });
    t.notOk(JSON.stringify(h).includes('ab'.repeat(32)), 'the secret hash never enters history');
  });

  t.test('declarations: one per node, replaced by the next, each with a sync event', async (t) => {
    const s = await fresh(t);
    t.equal(await s.declaration(null), null, 'none before the first sync');
    await s.declare(null, { sandboxes: ['a', 'b'], at: at(1).toISOString() }, { declared: 2 });
    await s.declare('n1', { sandboxes: ['c'], at: at(2).toISOString() }, { declared: 1 });
    await s.declare(null, { sandboxes: ['b'], at: at(3).toISOString() }, { declared: 1 });
    t.same(await s.declaration(null), { sandboxes: ['b'], at: at(3).toISOString() });
    t.same(await s.declaration('n1'), { sandboxes: ['c'], at: at(2).toISOString() });
    t.equal(await s.declaration('n2'), null);
    t.same(
      (await s.history({})).filter((e) => e.kind === 'sync').map((e) => [e.at, e.detail]),
      [
        [at(1).toISOString(), { declared: 2 }],
        [at(2).toISOString(), { declared: 1 }],
        [at(3).toISOString(), { declared: 1 }],
      ],
    );
  });

  t.test('many concurrent claims on few addresses: never two owners', async (t) => {
    const s = await fresh(t);
    const ips = ['10.8.64.2', '10.8.64.3', '10.8.64.4'];
    const results = await Promise.allSettled(
      Array.from({ length: 24 }, (_, i) =>
        s.claim({ sandbox: `s${i}`, ip: ips[i % ips.length] as string, mac: null, at: at(i) }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    t.equal(won.length, ips.length, 'one winner per address');
    for (const r of results) {
      if (r.status === 'rejected') t.ok(isBridgewardError(r.reason, 'CONFLICT'));
    }
    const snap = await s.snapshot();
    t.equal(new Set(snap.leases.map((l) => l.ip)).size, snap.leases.length);
  });
}
