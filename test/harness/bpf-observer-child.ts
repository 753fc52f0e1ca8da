/**
 * Runs the eBPF observer, following the bridge's ports through the bridge lifecycle (and serves
 * probes), inside a network namespace for the integration
 * tests: `ip netns exec NS node bpf-observer-child.js BRIDGE PIN_DIR|- [BUDGET [tcx|clsact]]`
 * (BUDGET: new bindings per second per port, 0 for no limit, the default). Writes JSON lines to
 * stdout: `{type:'ready', bridge}`, `{type:'obs', obs}` per observation, `{type:'activity', activity}` per port counter reading, `{type:'reply', id,
 * data}` per command. Reads commands as JSON lines on stdin: `{id, cmd: 'live'|'ports'|'stats'|
 * 'probe'|'close', ip?, timeoutMs?}`. Logs (pino) go to stderr.
 *
 * @example
 * ip netns exec bw-1a2b3c-r node dist/test/harness/bpf-observer-child.js rt0 /tmp/bpf/bridgeward
 */
import { createInterface } from 'node:readline';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { openRtnl } from '../../src/observe/rtnl.js';
import { startBpfObserver } from '../../src/observe/bpf-observer.js';
import { probeAddress } from '../../src/observe/arp-probe.js';
import { BridgeLifecycle } from '../../src/bridge/lifecycle.js';

const [bridgeName = 'rt0', pinArg = '-', budget = '0', attach = 'tcx'] = process.argv.slice(2);
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const log = createLogger('info', process.stderr);
const metrics = createMetrics();
const rtnl = openRtnl();
const lifecycle = await BridgeLifecycle.start({ rtnl, name: bridgeName, log, metrics });
const bridge = lifecycle.current();
if (!bridge?.mac) throw new Error(`no bridge ${bridgeName}`);
let probeMalformed = 0;
const observer = await startBpfObserver({
  pinDir: pinArg === '-' ? null : pinArg,
  log,
  metrics,
  onObservation: (obs) => out({ type: 'obs', obs }),
  onPortActivity: (activity) => out({ type: 'activity', activity }),
  statsIntervalMs: 60_000,
  budget: { perSecond: Number(budget), burst: Math.max(1, Number(budget)) },
  attach: attach === 'clsact' ? 'clsact' : 'tcx',
});
lifecycle.listen(observer.bridgeListener);
observer.removeStale(await rtnl.links());
out({ type: 'ready', bridge: { index: bridge.index, mac: bridge.mac } });

type Command = { id: number; cmd: string; ip?: string; timeoutMs?: number };
const commands: Record<string, (c: Command) => Promise<unknown>> = {
  live: async () => [...(await observer.source.live()).values()],
  ports: async () => [...observer.ports()],
  stats: async () => {
    observer.refreshStats();
    const values = async (c: { get(): Promise<{ values: unknown[] }> }) => (await c.get()).values;
    return {
      arp: await values(metrics.portArpFrames),
      malformed: await values(metrics.portMalformedFrames),
      malformedTotal: await values(metrics.malformedFrames),
      resyncs: await values(metrics.resyncs),
      run: observer.runStats(),
    };
  },
  probe: async (c) => ({
    replies: await probeAddress({
      ifindex: bridge.index,
      srcMac: bridge.mac as string,
      ip: c.ip ?? '',
      timeoutMs: c.timeoutMs ?? 300,
      onMalformed: () => probeMalformed++,
    }),
    malformed: probeMalformed,
  }),
  close: async () => {
    lifecycle.close();
    await observer.close();
    rtnl.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};
for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line) as Command;
  const handler = commands[c.cmd];
  if (!handler) out({ type: 'reply', id: c.id, error: `unknown command ${c.cmd}` });
  else
    handler(c).then(
      (data) => out({ type: 'reply', id: c.id, data }),
      (e: Error) => out({ type: 'reply', id: c.id, error: e.message }),
    );
}
