// The async mutex: one at a time, in arrival order, a failure does not block the next.
import t from 'tap';
import { Mutex } from '../../src/ipam/mutex.js';

t.test('runs callers one at a time in arrival order', async (t) => {
  const m = new Mutex();
  const log: string[] = [];
  let inside = 0;
  const job = (name: string, ms: number) =>
    m.run(async () => {
      inside++;
      t.equal(inside, 1, `${name} runs alone`);
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${name}`);
      inside--;
      return name;
    });
  const failing = m.run(async () => {
    throw new Error('boom');
  });
  const results = await Promise.allSettled([job('a', 20), failing, job('b', 1), job('c', 5)]);
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? r.value : 'rejected')),
    ['a', 'rejected', 'b', 'c'],
  );
  t.same(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
});
