import t from 'tap';
import { hashSecret, newSecret, secretMatches } from '../../src/identity/secret.js';

t.test('a secret has 256 random bits in base64url', async (t) => {
  const a = newSecret();
  const b = newSecret();
  t.match(a, /^[A-Za-z0-9_-]{43}$/);
  t.equal(Buffer.from(a, 'base64url').length, 32);
  t.not(a, b, 'two secrets differ');
});

t.test('only the SHA-256 hex is kept, and it matches', async (t) => {
  t.equal(
    hashSecret('abc'),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    'FIPS 180-2 test vector',
  );
  const s = newSecret();
  const h = hashSecret(s);
  t.match(h, /^[0-9a-f]{64}$/);
  t.notMatch(h, s);
  t.ok(secretMatches(s, h));
});

t.test('wrong, empty, truncated or malformed inputs do not match', async (t) => {
  const s = newSecret();
  const h = hashSecret(s);
  t.notOk(secretMatches(newSecret(), h));
  t.notOk(secretMatches('', h));
  t.notOk(secretMatches(s.slice(0, -1), h));
  t.notOk(secretMatches(s + 'x', h));
  t.notOk(secretMatches(s, h.slice(0, 10)), 'short stored hash');
  t.notOk(secretMatches(s, 'zz'), 'non-hex stored hash');
  t.notOk(secretMatches(h, h), 'the hash itself is not a secret');
});
