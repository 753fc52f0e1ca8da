import t from 'tap';
import {
  broadcastOf,
  contains,
  formatIp,
  parseCidr,
  parseIp,
  parseMac,
} from '../../src/net/ipv4.js';

t.test('parse and format addresses', async (t) => {
  t.equal(parseIp('10.8.64.2'), 0x0a084002);
  t.equal(formatIp(0x0a084002), '10.8.64.2');
  t.equal(formatIp(parseIp('255.255.255.255')), '255.255.255.255');
  t.equal(parseIp('0.0.0.0'), 0);
  t.equal(parseIp('192.168.100.10'), 0xc0a8640a);
  for (const bad of [
    '10.8.64',
    '10.8.64.256',
    '01.2.3.4',
    '1.2.3.00',
    'a.b.c.d',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '',
    '1.2.3.4.5',
    '1..2.3',
    '.1.2.3',
    '1.2.3.',
    '1234.1.1.1',
    '1.2.3.-4',
    '1.2.3.0x1',
    '1.2.3.4/24',
    '\u0661.2.3.4',
  ]) {
    t.throws(() => parseIp(bad), { code: 'INVALID_ARGUMENT' }, bad);
  }
});

t.test('subnets', async (t) => {
  const s = parseCidr('10.8.64.0/27');
  t.equal(formatIp(broadcastOf(s)), '10.8.64.31');
  t.ok(contains(s, parseIp('10.8.64.31')));
  t.notOk(contains(s, parseIp('10.8.64.32')));
});

t.test('MACs are normalised to lowercase colon form', async (t) => {
  t.equal(parseMac('02-AB-00-00-00-01'), '02:ab:00:00:00:01');
  t.throws(() => parseMac('02:ab:00:00:00'), /invalid MAC/);
  t.throws(() => parseMac('zz:ab:00:00:00:01'), /invalid MAC/);
});
