/**
 * The agent's Prometheus registry. Every metric is created here, on one registry per agent, so
 * tests can run several agents in one process and `/metrics` shows exactly this agent's series.
 *
 * @example
 * const m = createMetrics();
 * m.leases.set({ state: 'active' }, 3);
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** All metrics of one agent. */
export interface Metrics {
  /** The registry `/metrics` serves. */
  readonly registry: Registry;
  /** 1 once the agent serves, labelled by build version. */
  readonly up: Gauge<'version'>;
  /** Addresses by state: active, free, quarantined, cooling. */
  readonly leases: Gauge<'state'>;
  /** Allocation attempts by result (ok, existing, exhausted, conflict, error). */
  readonly allocations: Counter<'result'>;
  /**
   * Pre-handout checks by how the address was vouched for: `fresh` (a background probe within
   * the freshness bound) or `probed` (a probe on the allocation's path).
   */
  readonly prehandoutChecks: Counter<'result'>;
  /** Reconcile sweeps by trigger (boot, periodic, event) and how long they took. */
  readonly reconcileSeconds: Histogram<'trigger'>;
  /** Findings currently active, by kind. */
  readonly conflictsActive: Gauge<'kind'>;
  /** Findings raised since start, by kind. */
  readonly conflictsTotal: Counter<'kind'>;
  /** Observations received, by source (netlink, bpf, probe). */
  readonly observations: Counter<'source'>;
  /** Frames the observers dropped as malformed, by source. */
  readonly malformedFrames: Counter<'source'>;
  /** Well-formed ARP frames seen by the eBPF observer, by bridge port (interface name). */
  readonly portArpFrames: Counter<'port'>;
  /** Malformed ARP frames seen by the eBPF observer, by bridge port (interface name). */
  readonly portMalformedFrames: Counter<'port'>;
  /** Node-port table repairs after drift. */
  readonly nodeportRepairs: Counter<never>;
  /** nftables transactions by result. */
  readonly nftTransactions: Counter<'result'>;
  /** Identity token requests by result. */
  readonly tokenRequests: Counter<'result'>;
  /** Times an event loop (netlink, ring buffer) fell behind and had to re-sync. */
  readonly resyncs: Counter<'source'>;
  /** Webhook delivery outcomes: delivered, retry, failed, dropped. */
  readonly webhookDeliveries: Counter<'result'>;
}

/** Creates a fresh registry with every bridgeward metric and the default process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bridgeward_process_' });
  const reg = { registers: [registry] };
  return {
    registry,
    up: new Gauge({
      name: 'bridgeward_up',
      help: 'Agent serving (1).',
      labelNames: ['version'],
      ...reg,
    }),
    leases: new Gauge({
      name: 'bridgeward_leases',
      help: 'Pool addresses by state.',
      labelNames: ['state'],
      ...reg,
    }),
    prehandoutChecks: new Counter({
      name: 'bridgeward_prehandout_checks_total',
      help: 'Pre-handout checks by result: fresh (probed in the background) or probed (on the allocation path).',
      labelNames: ['result'],
      ...reg,
    }),
    allocations: new Counter({
      name: 'bridgeward_allocations_total',
      help: 'Allocation requests by result.',
      labelNames: ['result'],
      ...reg,
    }),
    reconcileSeconds: new Histogram({
      name: 'bridgeward_reconcile_seconds',
      help: 'Reconcile sweep duration.',
      labelNames: ['trigger'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2],
      ...reg,
    }),
    conflictsActive: new Gauge({
      name: 'bridgeward_conflicts_active',
      help: 'Active conflict findings by kind.',
      labelNames: ['kind'],
      ...reg,
    }),
    conflictsTotal: new Counter({
      name: 'bridgeward_conflicts_total',
      help: 'Conflict findings raised by kind.',
      labelNames: ['kind'],
      ...reg,
    }),
    observations: new Counter({
      name: 'bridgeward_observations_total',
      help: 'Observations by source.',
      labelNames: ['source'],
      ...reg,
    }),
    malformedFrames: new Counter({
      name: 'bridgeward_malformed_frames_total',
      help: 'Malformed frames seen by source.',
      labelNames: ['source'],
      ...reg,
    }),
    portArpFrames: new Counter({
      name: 'bridgeward_port_arp_frames_total',
      help: 'ARP frames seen on each bridge port (eBPF observer; storm signal).',
      labelNames: ['port'],
      ...reg,
    }),
    portMalformedFrames: new Counter({
      name: 'bridgeward_port_malformed_frames_total',
      help: 'Malformed ARP frames seen on each bridge port (eBPF observer).',
      labelNames: ['port'],
      ...reg,
    }),
    nodeportRepairs: new Counter({
      name: 'bridgeward_nodeport_repairs_total',
      help: 'Node-port table repairs after drift.',
      ...reg,
    }),
    nftTransactions: new Counter({
      name: 'bridgeward_nft_transactions_total',
      help: 'nftables transactions by result.',
      labelNames: ['result'],
      ...reg,
    }),
    tokenRequests: new Counter({
      name: 'bridgeward_token_requests_total',
      help: 'Identity token requests by result.',
      labelNames: ['result'],
      ...reg,
    }),
    resyncs: new Counter({
      name: 'bridgeward_resyncs_total',
      help: 'Event-loop overruns that forced a re-sync.',
      labelNames: ['source'],
      ...reg,
    }),
    webhookDeliveries: new Counter({
      name: 'bridgeward_webhook_deliveries_total',
      help: 'Webhook delivery outcomes (delivered, retry, failed, dropped).',
      labelNames: ['result'],
      ...reg,
    }),
  };
}
