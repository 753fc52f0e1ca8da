import t from 'tap';
import { coveringMount, parseMounts } from '../../src/observe/mounts.js';

const MOUNTS = [
  '/dev/root / ext4 rw 0 0',
  'sysfs /sys sysfs rw 0 0',
  'bpf /sys/fs/bpf bpf rw 0 0',
  'tmpfs /tmp tmpfs rw 0 0',
  'bpf /tmp/my\\040pins bpf rw 0 0',
  'tmpfs /sys/fs/bpf tmpfs rw 0 0',
].join('\n');

t.test('parses mounts and decodes escapes', async (t) => {
  t.same(parseMounts(MOUNTS)[4], { mountPoint: '/tmp/my pins', fsType: 'bpf' });
  t.same(parseMounts('garbage\n\n'), []);
});

t.test('finds the mount covering a path', async (t) => {
  t.match(coveringMount(MOUNTS, '/tmp/my pins/bridgeward'), { fsType: 'bpf' });
  t.match(coveringMount(MOUNTS, '/tmp/my pinsX'), { mountPoint: '/tmp', fsType: 'tmpfs' });
  t.match(coveringMount(MOUNTS, '/var/lib'), { mountPoint: '/' });
  t.match(
    coveringMount(MOUNTS, '/sys/fs/bpf/bridgeward'),
    { fsType: 'tmpfs' },
    'a later mount on the same point shadows the bpffs',
  );
  t.equal(coveringMount('', '/x'), null);
});
