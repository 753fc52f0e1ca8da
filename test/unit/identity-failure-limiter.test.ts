import t from 'tap';
import { FailureLimiter } from '../../src/identity/failure-limiter.js';

t.test('refuses a source after maxFailures within the window, until it ends', async (t) => {
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 10_000, maxSources: 100 });
  const ip = '10.8.64.9';
  for (let i = 0; i < 3; i++) {
    t.equal(l.retryAfterSeconds(ip, 1000 + i), 0, `allowed before failure ${i + 1}`);
    l.recordFailure(ip, 1000 + i);
  }
  t.equal(l.retryAfterSeconds(ip, 1003), 10, 'refused with the rest of the window');
  t.equal(l.retryAfterSeconds(ip, 10_500), 1, 'rounded up, at least 1');
  t.equal(l.retryAfterSeconds('10.8.64.10', 1003), 0, 'other sources unaffected');
  t.equal(l.retryAfterSeconds(ip, 11_000), 0, 'a new window starts');
  l.recordFailure(ip, 11_000);
  t.equal(l.retryAfterSeconds(ip, 11_001), 0, 'one failure in the new window');
});

t.test('tracks a bounded number of sources, dropping expired then oldest', async (t) => {
  const l = new FailureLimiter({ maxFailures: 1, windowMs: 1000, maxSources: 3 });
  l.recordFailure('a', 0);
  l.recordFailure('b', 500);
  l.recordFailure('c', 1200);
  l.recordFailure('d', 1300);
  t.equal(l.size, 3, 'a expired and was dropped');
  t.equal(l.retryAfterSeconds('b', 1300), 1, 'b still limited');
  l.recordFailure('e', 1400);
  t.equal(l.size, 3);
  t.equal(l.retryAfterSeconds('b', 1400), 0, 'the oldest window (b) was evicted');
  t.equal(l.retryAfterSeconds('e', 1400), 1);
});

t.test('bad options are a RangeError', async (t) => {
  t.throws(() => new FailureLimiter({ maxFailures: 0, windowMs: 1, maxSources: 1 }), RangeError);
  t.throws(() => new FailureLimiter({ maxFailures: 1, windowMs: 1.5, maxSources: 1 }), {
    message: /windowMs must be a positive integer/,
  });
});
