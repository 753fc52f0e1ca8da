// The bridge as an observed object: which link events change what the name is, and which
// changes are a new instance (everything bound to the bridge is rebuilt) and which are not.
import t from 'tap';
import {
  NEVER_SEEN,
  bridgeStateOf,
  describeBridgeState,
  isNewInstance,
  nextBridgeState,
  type BridgeState,
} from '../../src/bridge/state.js';
import type { LinkInfo } from '../../src/observe/rtnl.js';

function link(over: Partial<LinkInfo>): LinkInfo {
  return {
    index: 2,
    name: 'rt0',
    kind: 'bridge',
    master: null,
    mac: '02:00:00:00:00:01',
    up: true,
    ...over,
  };
}
const rt0 = link({});

t.test('a dump: absent, present, or a non-bridge link of that name', async (t) => {
  t.same(bridgeStateOf('rt0', []), NEVER_SEEN);
  t.same(bridgeStateOf('rt0', [link({ name: 'eth0', kind: null }), rt0]), {
    kind: 'present',
    link: rt0,
  });
  const veth = link({ kind: 'veth' });
  t.same(bridgeStateOf('rt0', [veth]), { kind: 'not-a-bridge', link: veth });
  t.equal(
    describeBridgeState('rt0', bridgeStateOf('rt0', [veth])),
    'rt0 exists but is a veth link, not a bridge',
  );
  const present: BridgeState = { kind: 'present', link: rt0 };
  t.same(
    bridgeStateOf('rt0', [link({ name: 'rt0-old' })], present),
    { kind: 'absent', reason: 'renamed', detail: 'renamed to rt0-old' },
    'a re-dump after missed events still tells a rename from a delete',
  );
  t.same(bridgeStateOf('rt0', [], present), { kind: 'absent', reason: 'deleted', detail: null });
});

t.test(
  'link events: appear, change, delete, recreate, rename, a veth takes the name',
  async (t) => {
    let s: BridgeState = NEVER_SEEN;
    const step = (deleted: boolean, l: LinkInfo) =>
      (s = nextBridgeState('rt0', s, { deleted, link: l }));

    const other = link({ index: 9, name: 'veth9', kind: 'veth', master: 2 });
    t.equal(step(false, other), NEVER_SEEN, 'another link changes nothing');
    t.same(step(false, rt0), { kind: 'present', link: rt0 }, 'appears');
    const before = s;
    const newMac = link({ mac: '02:00:00:00:00:99' });
    step(false, newMac);
    t.same(s, { kind: 'present', link: newMac }, 'a MAC change updates the link');
    t.notOk(isNewInstance(before, s), 'but is the same instance');
    t.equal(step(false, other), s, 'a port event does not change the state');

    step(true, rt0);
    t.same(s, { kind: 'absent', reason: 'deleted', detail: null }, 'deleted');
    t.equal(describeBridgeState('rt0', s), 'bridge rt0 is not present (deleted)');
    const again = link({ index: 14, mac: '02:00:00:00:00:42' });
    const gone = s;
    step(false, again);
    t.same(s, { kind: 'present', link: again }, 'recreated with a new ifindex and MAC');
    t.ok(isNewInstance(gone, s));
    t.ok(isNewInstance({ kind: 'present', link: rt0 }, s), 'a new ifindex is a new instance');

    step(false, link({ index: 14, name: 'rt0-old' }));
    t.same(s, { kind: 'absent', reason: 'renamed', detail: 'renamed to rt0-old' }, 'renamed away');
    t.equal(describeBridgeState('rt0', s), 'bridge rt0 is not present (renamed to rt0-old)');
    t.equal(step(true, again), s, 'deleting the renamed link changes nothing any more');

    const veth = link({ index: 20, kind: 'veth' });
    step(false, veth);
    t.same(s, { kind: 'not-a-bridge', link: veth }, 'a veth takes the name');
    step(false, link({ index: 20, name: 'vethx', kind: 'veth' }));
    t.equal(s.kind, 'absent', 'and gives it up');
    step(false, link({ index: 21, name: 'rt0' }));
    t.equal(s.kind, 'present', 'a bridge renamed to rt0 is the bridge');
  },
);
