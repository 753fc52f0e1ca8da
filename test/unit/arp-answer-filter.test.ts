// The probe window's socket filter, run by a small classic-BPF interpreter of the three
// instructions it uses: only ARP frames naming a probed address get through.
import t from 'tap';
import { MAX_FILTER_ADDRESSES, arpAnswerFilter } from '../../src/net/arp-answer-filter.js';
import { buildArpFrame, buildProbe } from '../../src/net/arp.js';

/** Runs a filter on a frame as the kernel would: the bytes it keeps (0 = dropped). */
function runFilter(program: Buffer, frame: Buffer): number {
  let a = 0;
  for (let pc = 0; pc < program.length / 8; pc++) {
    const code = program.readUInt16LE(pc * 8);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) {
      if (k + 4 > frame.length) return 0; // a load past the end drops the frame
      a = frame.readUInt32BE(k);
    } else if (code === 0x15) {
      if (a !== k) pc += jf;
    } else if (code === 0x06) {
      return k;
    } else {
      throw new Error(`unexpected instruction ${code}`);
    }
  }
  throw new Error('fell off the end');
}

const them = '02:00:00:00:00:09';
const reply = (senderIp: string, targetIp: string) =>
  buildArpFrame({
    op: 'reply',
    ethSrc: them,
    ethDst: '02:00:00:00:00:01',
    vlan: null,
    senderMac: them,
    senderIp,
    targetMac: '02:00:00:00:00:01',
    targetIp,
  });

t.test('only frames naming a probed address get through', async (t) => {
  const f = arpAnswerFilter(new Set(['10.8.64.2', '10.8.64.3']));
  if (!f) throw new Error('no filter');
  t.equal(f.length / 8, 3 + 4 * 2, 'two loads, a pair per address and field, a drop');
  t.ok(runFilter(f, reply('10.8.64.2', '10.8.64.1')) > 0, 'an answer from a probed address');
  t.ok(runFilter(f, buildProbe(them, '10.8.64.3')) > 0, "someone else's probe for it");
  t.equal(runFilter(f, reply('10.8.64.7', '10.8.64.1')), 0, 'a storm about another address');
  t.equal(runFilter(f, reply('10.8.64.2', '10.8.64.1').subarray(0, 30)), 0, 'cut short');
});

t.test('no filter for no address or more than one program holds', async (t) => {
  t.equal(arpAnswerFilter(new Set()), null);
  const many = new Set(
    Array.from({ length: MAX_FILTER_ADDRESSES + 1 }, (_, i) => `10.9.${i >> 8}.${i & 255}`),
  );
  t.equal(arpAnswerFilter(many), null, 'then every ARP frame is taken');
  many.delete('10.9.0.0');
  t.ok((arpAnswerFilter(many)?.length ?? 0) / 8 <= 4096, 'the largest fits BPF_MAXINSNS');
});
