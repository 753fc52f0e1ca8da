/**
 * The agent's nftables table, `ip bridgeward`: one map `nodeports` (`proto . port : addr . port`)
 * and a fixed handful of rules that look it up. Rules never change per sandbox; only map
 * elements do. Pure: renders command buffers, runs nothing.
 *
 * - `prerouting` (priority dstnat): traffic to a local address (from outside or from a sandbox)
 *   is DNATed through the map.
 * - `output` (priority -100; nft 1.0.6 rejects `dstnat` on this hook): the same for traffic the
 *   runner sends itself, including to 127.0.0.1.
 * - `postrouting` (priority srcnat): masquerade DNATed traffic from 127.0.0.0/8 leaving via the
 *   bridge (the sandbox could not answer 127.0.0.1), and DNATed traffic from the sandbox subnet
 *   leaving via the bridge (hairpin: a sandbox reaching a node port that leads to itself or a
 *   neighbour would otherwise get the answer from an unexpected source). The subnet stands for
 *   "came in via the bridge": `iifname` is not set on the postrouting hook.
 * - `input` (priority filter): drops new connections from the bridge to 127.0.0.0/8, which
 *   `route_localnet` would otherwise let sandboxes open to the runner's localhost services
 *   (CVE-2020-8558); answers of DNATed 127.0.0.1 connections are established and pass.
 *
 * @example
 * const script = renderFullReplace({ bridge: 'rt0', subnet: '10.8.64.0/24' }, elements); // one transaction: the whole table anew
 */
import { formatElement, type NatElement } from './element.js';

/** Address family of the agent's table. */
export const TABLE_FAMILY = 'ip';
/** Name of the agent's table (every kernel object the agent creates carries it). */
export const TABLE_NAME = 'bridgeward';
/** Name of the node-port map inside the table. */
export const MAP_NAME = 'nodeports';

/** What the fixed rules depend on. */
export interface TableSpec {
  /** The sandbox bridge. */
  readonly bridge: string;
  /** The sandbox subnet in CIDR form. */
  readonly subnet: string;
}

/**
 * Renders the table definition with the given elements (no add/delete around it).
 *
 * @example renderTable({ bridge: 'rt0', subnet: '10.8.64.0/24' }, []).startsWith('table ip bridgeward {'); // true
 */
export function renderTable(spec: TableSpec, elements: readonly NatElement[]): string {
  const br = JSON.stringify(spec.bridge);
  const elems = elements.length
    ? `\t\telements = { ${elements.map(formatElement).join(',\n\t\t\t')} }\n`
    : '';
  return (
    `table ${TABLE_FAMILY} ${TABLE_NAME} {\n` +
    `\tmap ${MAP_NAME} {\n` +
    `\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n` +
    elems +
    `\t}\n` +
    `\tchain prerouting {\n` +
    `\t\ttype nat hook prerouting priority dstnat; policy accept;\n` +
    `\t\tfib daddr type local dnat ip to meta l4proto . th dport map @${MAP_NAME}\n` +
    `\t}\n` +
    `\tchain output {\n` +
    `\t\ttype nat hook output priority -100; policy accept;\n` +
    `\t\tfib daddr type local dnat ip to meta l4proto . th dport map @${MAP_NAME}\n` +
    `\t}\n` +
    `\tchain postrouting {\n` +
    `\t\ttype nat hook postrouting priority srcnat; policy accept;\n` +
    `\t\toifname ${br} ct status dnat ip saddr 127.0.0.0/8 masquerade\n` +
    `\t\toifname ${br} ct status dnat ip saddr ${spec.subnet} masquerade\n` +
    `\t}\n` +
    `\tchain input {\n` +
    `\t\ttype filter hook input priority filter; policy accept;\n` +
    `\t\tiifname ${br} ip daddr 127.0.0.0/8 ct state != { established, related } drop\n` +
    `\t}\n` +
    `}\n`
  );
}

/**
 * Renders the atomic full replace: create the table if missing, delete it (with everything in
 * it, leftovers from a crash or another tool included) and define it anew, in one buffer, which
 * libnftables applies as one kernel transaction.
 *
 * @example renderFullReplace({ bridge: 'rt0', subnet: '10.8.64.0/24' }, []).split('\n')[1]; // 'delete table ip bridgeward'
 */
export function renderFullReplace(spec: TableSpec, elements: readonly NatElement[]): string {
  return (
    `table ${TABLE_FAMILY} ${TABLE_NAME} {}\n` +
    `delete table ${TABLE_FAMILY} ${TABLE_NAME}\n` +
    renderTable(spec, elements)
  );
}

/** The command that lists the table (run with JSON output; parse with `parseTableListing`). */
export const LIST_TABLE = `list table ${TABLE_FAMILY} ${TABLE_NAME}`;
