// Chaos: 8 concurrent API clients do 2,000 allocate/release operations on a /27 while the agent
// is killed with SIGKILL 10 times. No address may ever be held by two sandboxes at once (as the
// clients see it, and in the store), and no acknowledged lease may be lost.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { apiRequest } from '../../src/api/client.js';
import { isBridgewardError } from '../../src/errors.js';
import type { AllocationView } from '../../src/api/lease-routes.js';
import type { Lease, LeaseEvent } from '../../src/store/types.js';

const SUBNET = '10.8.70.0/27';
const CLIENTS = 8;
const OPS = 2000;
const KILLS = 10;

t.test('SIGKILL chaos', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET });
  let agent = AgentProcess.start(bed, { subnet: SUBNET });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const socket = agent.socket;

  let ops = 0;
  /** Set when the run cannot go on (the agent did not come back): clients stop retrying. */
  let failure: Error | null = null;
  const violations: string[] = [];
  /** ip -> sandbox, for every lease a client has been told it holds and not yet released. */
  const held = new Map<string, string>();
  /** sandbox -> ip of acknowledged, unreleased leases. */
  const mine = new Map<string, string>();
  const released = new Set<string>();

  /** Retries a request until the agent answers (it may be dead or restarting). */
  async function call<T>(
    f: () => Promise<T>,
    tolerate?: (e: unknown) => T | undefined,
  ): Promise<T> {
    for (;;) {
      if (failure) throw failure;
      try {
        return await f();
      } catch (e) {
        const ok = tolerate?.(e);
        if (ok !== undefined) return ok;
        if (isBridgewardError(e, 'AGENT_UNREACHABLE') || isBridgewardError(e, 'NOT_READY')) {
          await new Promise((r) => setTimeout(r, 25));
          continue;
        }
        throw e;
      }
    }
  }

  async function client(c: number): Promise<void> {
    for (let k = 0; ops < OPS; k++) {
      const sandbox = `c${c}-${k}`;
      const a = await call(() =>
        apiRequest<AllocationView>(socket, 'POST', '/v1/leases', { sandbox }),
      );
      ops++;
      const other = held.get(a.ip);
      if (other !== undefined && other !== sandbox) {
        violations.push(`${a.ip} given to ${sandbox} while ${other} holds it`);
      }
      held.set(a.ip, sandbox);
      mine.set(sandbox, a.ip);
      // Half the time hold on a little, so several leases overlap.
      if (k % 2) await new Promise((r) => setTimeout(r, 2));
      await call(
        () => apiRequest(socket, 'DELETE', `/v1/leases/${sandbox}`),
        // A release whose answer was lost may have happened already.
        (e) => (isBridgewardError(e, 'UNKNOWN_SANDBOX') ? {} : undefined),
      );
      ops++;
      held.delete(a.ip);
      mine.delete(sandbox);
      released.add(sandbox);
      // Every fourth sandbox is kept (a long-lived one) until the end.
      if (k % 4 === 3 && mine.size < 12) {
        const keep = `${sandbox}-keep`;
        const kept = await call(() =>
          apiRequest<AllocationView>(socket, 'POST', '/v1/leases', { sandbox: keep }),
        );
        ops++;
        const o = held.get(kept.ip);
        if (o !== undefined && o !== keep)
          violations.push(`${kept.ip} given to ${keep} while ${o} holds it`);
        held.set(kept.ip, keep);
        mine.set(keep, kept.ip);
      }
    }
  }

  async function killer(): Promise<number> {
    let kills = 0;
    while (kills < KILLS && ops < OPS) {
      const target = Math.min(OPS - 50, ((kills + 1) * OPS) / (KILLS + 1));
      while (ops < target) await new Promise((r) => setTimeout(r, 5));
      await agent.stop('SIGKILL');
      kills++;
      agent = AgentProcess.start(bed, { subnet: SUBNET }, agent);
      try {
        await agent.ready(60_000);
      } catch (e) {
        failure = new Error(`agent did not come back after kill ${kills}: ${(e as Error).message}`);
        throw failure;
      }
    }
    return kills;
  }

  const [kills] = await Promise.all([
    killer(),
    ...Array.from({ length: CLIENTS }, (_, c) => client(c)),
  ]);
  t.equal(kills, KILLS, `agent killed ${KILLS} times`);
  t.ok(ops >= OPS, `${ops} operations`);
  t.same(violations, [], 'no address was ever held by two sandboxes');

  const leases = await apiRequest<Lease[]>(socket, 'GET', '/v1/leases');
  const byIp = new Set(leases.map((l) => l.ip));
  t.equal(byIp.size, leases.length, 'one sandbox per active address in the store');
  for (const [sandbox, ip] of mine) {
    t.ok(
      leases.some((l) => l.sandbox === sandbox && l.ip === ip),
      `kept lease ${sandbox} -> ${ip} survived`,
    );
  }
  t.equal(leases.length, mine.size, 'no lease the clients did not hold');
  t.notOk(
    leases.some((l) => released.has(l.sandbox)),
    'no released sandbox came back',
  );

  // The history agrees: per address, owners alternate allocated/released, generations +1.
  const events = await apiRequest<LeaseEvent[]>(socket, 'GET', '/v1/history');
  const state = new Map<string, { owner: string | null; gen: number }>();
  let broken = 0;
  for (const e of events) {
    if (!e.ip || (e.kind !== 'allocated' && e.kind !== 'released')) continue;
    const s = state.get(e.ip) ?? { owner: null, gen: 0 };
    if (e.kind === 'allocated') {
      if (s.owner !== null || e.detail.generation !== s.gen + 1) broken++;
      state.set(e.ip, { owner: e.sandbox, gen: e.detail.generation as number });
    } else {
      if (s.owner !== e.sandbox) broken++;
      state.set(e.ip, { owner: null, gen: s.gen });
    }
  }
  t.equal(broken, 0, 'history: never two owners of one address, generations increase by one');
});
