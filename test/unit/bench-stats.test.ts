import t from 'tap';
import { median, quantile, rounded } from '../../bench/benchmark.js';

t.test('nearest-rank quantiles', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  t.equal(quantile([1, 2, 3, 4], 0.5), 2);
  t.ok(Number.isNaN(median([])));
});

t.test('figures are rounded, or null when unmeasurable', async (t) => {
  t.equal(rounded(3.14159), 3.142);
  t.equal(rounded(3.14159, 2), 3.14);

  t.equal(rounded(NaN), null);
  t.equal(rounded(null), null);
});
