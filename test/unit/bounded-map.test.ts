import t from 'tap';
import { BoundedMap } from '../../src/observe/bounded-map.js';

t.test('holds at most its limit; the oldest set goes first', async (t) => {
  const m = new BoundedMap<string, number>(3);
  for (let i = 0; i < 10; i++) m.set(`k${i}`, i);
  t.same(
    [...m],
    [
      ['k7', 7],
      ['k8', 8],
      ['k9', 9],
    ],
  );
  m.set('k7', 70); // setting again makes it the newest
  m.set('k10', 10);
  t.same([...m.keys()], ['k9', 'k7', 'k10']);
  t.throws(() => new BoundedMap(0), RangeError);
});
