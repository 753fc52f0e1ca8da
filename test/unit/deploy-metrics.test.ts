// Every metric the Grafana dashboard and the Prometheus alert rules in deploy/ query is one the
// agent really exports: names are read from the agent's own registry (createMetrics), so the
// check follows metrics as they are added, and a renamed or removed metric fails here.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics.js';
import { REPO_ROOT } from '../../src/native.js';

const DEPLOY = join(REPO_ROOT, 'deploy');

/** Every series name the registry exposes (a histogram's _bucket, _sum and _count). */
async function exportedSeries(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await createMetrics().registry.getMetricsAsJSON()) {
    if (String(m.type) === 'histogram')
      for (const s of ['bucket', 'sum', 'count']) names.add(`${m.name}_${s}`);
    else names.add(m.name);
  }
  return names;
}

/** The bridgeward_* names used in a query text. */
function usedNames(text: string): string[] {
  return [...text.matchAll(/\bbridgeward_[a-z0-9_]+/g)].map((m) => m[0]);
}

/** Every string value in a JSON document (queries, legends, templating). */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

t.test('the dashboard queries only exported metrics, and shows every topic', async (t) => {
  const exported = await exportedSeries();
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana-dashboard.json'), 'utf8')) as {
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  const used = new Set(strings(dash).flatMap(usedNames));
  for (const name of used) t.ok(exported.has(name), `${name} is exported`);
  for (const p of dash.panels.filter((x) => x.type !== 'row')) {
    t.ok(p.targets?.length && p.targets.every((x) => usedNames(x.expr).length > 0), `${p.title}`);
  }
  const topics = [
    'bridgeward_conflicts_active', // conflicts by kind
    'bridgeward_conflicts_total',
    'bridgeward_leases', // leases by state, quarantines
    'bridgeward_allocations_total', // allocation rate
    'bridgeward_allocation_seconds_bucket', // allocation latency
    'bridgeward_nodeport_repairs_total', // node-port repairs
    'bridgeward_nodeport_change_seconds_bucket', // node-port change latency
    'bridgeward_observations_total', // observer health
    'bridgeward_resyncs_total',
    'bridgeward_token_requests_total', // token requests
  ];
  for (const name of topics) t.ok(used.has(name), `the dashboard shows ${name}`);
});

t.test('the alert rules query only exported metrics', async (t) => {
  const exported = await exportedSeries();
  const rules = parse(readFileSync(join(DEPLOY, 'prometheus-rules.yaml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const all = rules.groups.flatMap((g) => g.rules);
  t.ok(all.length > 0, 'there are rules');
  for (const r of all) {
    const names = usedNames(r.expr);
    t.ok(names.length > 0, `${r.alert} queries a bridgeward metric`);
    for (const name of names) t.ok(exported.has(name), `${r.alert}: ${name} is exported`);
  }
});

t.test('the check is real: a name the agent does not export is caught', async (t) => {
  const exported = await exportedSeries();
  t.notOk(exported.has('bridgeward_conflicts'), 'a near miss');
  t.ok(exported.has('bridgeward_reconcile_seconds_bucket'), 'histogram series');
  t.notOk(exported.has('bridgeward_reconcile_seconds'), 'a histogram has no bare series');
});
