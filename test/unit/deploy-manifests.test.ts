// deploy/: the DaemonSet and its ConfigMap validated against the Kubernetes API schema (the
// kubernetes-models package: the OpenAPI schema compiled to validators) plus the checks the API
// server makes beyond the schema; their config and the systemd sample config checked by
// `bridgeward run --check-config`, which parses and validates exactly as `run` does and touches
// nothing.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { run } from '../../src/exec.js';
import { REPO_ROOT } from '../../src/native.js';
import { VERSION } from '../../src/version.js';
import { AGENT_NODE_OPTIONS } from '../../src/node-options.js';
import { BIN } from '../../src/testbed/agent-process.js';
import { readDeploy } from '../harness/daemonset-podman.js';

const deploy = readDeploy();

function checkConfig(args: readonly string[]) {
  return run([process.execPath, BIN, 'run', '--check-config', ...args], { check: false });
}

t.test('the ConfigMap and the DaemonSet are valid Kubernetes objects', async (t) => {
  t.same(
    deploy.objects.map((o) => `${o.apiVersion}/${o.kind}`),
    ['v1/ConfigMap', 'apps/v1/DaemonSet'],
  );
  for (const o of deploy.objects) {
    const model = o.kind === 'ConfigMap' ? new ConfigMap(o as never) : new DaemonSet(o as never);
    t.doesNotThrow(() => model.validate(), `${o.kind} matches the API schema`);
  }
  // The validator is real: a field of the wrong type is refused.
  const broken = structuredClone(deploy.daemonSet) as unknown as {
    spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } };
  };
  const port = broken.spec.template.spec.containers[0]?.ports[0];
  if (port) port.containerPort = '9464';
  t.throws(() => new DaemonSet(broken as never).validate(), /containerPort must be integer/);
});

t.test('what the API server checks beyond the schema', async (t) => {
  const ds = deploy.daemonSet as unknown as {
    metadata: { namespace: string };
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: { metadata: { labels: Record<string, string> } };
    };
  };
  const labels = ds.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) {
    t.equal(labels[k], v, `the selector's ${k} matches the template's labels`);
  }
  const volumes = new Set((deploy.pod.volumes ?? []).map((v) => v.name));
  for (const m of deploy.container.volumeMounts ?? []) {
    t.ok(volumes.has(m.name), `volumeMount ${m.name} has a volume`);
  }
  const cm = deploy.objects.find((o) => o.kind === 'ConfigMap') as unknown as {
    metadata: { name: string; namespace: string };
  };
  const refs = (deploy.pod.volumes ?? []).flatMap((v) => (v.configMap ? [v.configMap.name] : []));
  t.same(refs, [cm.metadata.name], 'the pod mounts this ConfigMap');
  t.equal(cm.metadata.namespace, ds.metadata.namespace, 'in the same namespace');
  for (const cap of deploy.container.securityContext?.capabilities?.add ?? []) {
    t.match(cap, /^[A-Z_]+$/, `capability ${cap} is named without CAP_`);
  }
  t.equal(deploy.container.image, `bridgeward:${VERSION}`, 'the image of this version');
});

t.test('the DaemonSet config passes --check-config for every node subnet', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  writeFileSync(config, deploy.configData['config.json'] ?? '');
  const subnets = JSON.parse(deploy.configData['subnets.json'] ?? '{}') as Record<string, string>;
  t.ok(Object.keys(subnets).length > 0, 'subnets.json names nodes');
  for (const [node, subnet] of Object.entries(subnets)) {
    const r = await checkConfig(['--config', config, '--subnet', subnet]);
    t.equal(r.code, 0, `${node}: exit 0 (${r.stderr.trim()})`);
    t.match(r.stdout, new RegExp(`^bridgeward: config OK: bridge rt0, subnet ${subnet}`));
  }
});

t.test('the systemd sample config passes --check-config, -o json shows it', async (t) => {
  const sample = join(REPO_ROOT, 'deploy', 'config.json');
  const r = await checkConfig(['--config', sample, '-o', 'json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; config: Record<string, unknown> };
  t.equal(out.ok, true);
  t.match(out.config, { bridge: 'rt0', subnet: '10.8.64.0/24', gateway: '10.8.64.1' });
  t.match(out.config, { store: { kind: 'sqlite' }, sysctlDir: '/proc/sys' });
});

t.test('--check-config: precise errors with exit 2, and it touches nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ subnet: '10.8.64.0/24', stateDirectory: '/x' }));
  const unknown = await checkConfig(['--config', bad]);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /^bridgeward: config file .*bad\.json: unknown key "stateDirectory"/);
  const gw = await checkConfig(['--subnet', '10.8.64.0/24', '--gateway', '10.9.0.1']);
  t.equal(gw.code, 2);
  t.match(gw.stderr, /--gateway 10\.9\.0\.1 is not a host address of 10\.8\.64\.0\/24/);
  t.equal((await checkConfig(['--subnet', '10.8.64.0/24', '-o', 'yaml'])).code, 2);
  const notJson = join(dir, 'not.json');
  writeFileSync(notJson, '{ "subnet": ');
  t.match((await checkConfig(['--config', notJson])).stderr, /is not valid JSON/);
  const state = join(dir, 'state');
  const socket = join(dir, 'run', 'api.sock');
  const ok = await checkConfig([
    '--subnet',
    '10.8.64.0/24',
    '--state-dir',
    state,
    '--socket',
    socket,
  ]);
  t.equal(ok.code, 0);
  t.notOk(existsSync(state), 'no state dir made');
  t.notOk(existsSync(join(dir, 'run')), 'no socket dir made');
  const plainRun = await run(
    [process.execPath, BIN, 'run', '--subnet', '10.8.64.0/24', '-o', 'json'],
    {
      check: false,
    },
  );
  t.equal(plainRun.code, 2, '-o without --check-config');
  t.match(plainRun.stderr, /-o goes with --check-config/);
});

t.test('the systemd unit and the image run the agent with its Node options', async (t) => {
  const unit = readFileSync(join(REPO_ROOT, 'deploy', 'bridgeward.service'), 'utf8');
  t.match(unit, `Environment="NODE_OPTIONS=${AGENT_NODE_OPTIONS}"`, 'the unit');
  const image = readFileSync(join(REPO_ROOT, 'Containerfile'), 'utf8');
  t.match(image, `ENV NODE_OPTIONS="${AGENT_NODE_OPTIONS}"`, 'the image (and so the DaemonSet)');
});
