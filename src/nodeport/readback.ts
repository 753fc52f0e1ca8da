/**
 * Parses the JSON listing of the agent's table (`nft -j list table ip bridgeward`) into the map
 * elements and a structure fingerprint (table, map and chain definitions and rules, without
 * handles and elements). Comparing fingerprints detects edited or flushed rules; comparing
 * elements detects edited map contents. Pure.
 *
 * @example
 * const l = parseTableListing(json);
 * l.elements; // [{ proto: 'tcp', hostPort: 6667, addr: '10.8.64.7', port: 8080 }]
 */
import { BridgewardError } from '../errors.js';
import type { NatElement } from './element.js';
import { MAP_NAME } from './ruleset.js';

/** What the kernel holds in the agent's table. */
export interface TableListing {
  /** The map's elements that have the expected shape. */
  readonly elements: readonly NatElement[];
  /** Count of map elements with an unexpected shape (e.g. another protocol): drift. */
  readonly foreign: number;
  /** Canonical text of everything but handles and map elements. */
  readonly structure: string;
}

/**
 * Parses a listing.
 *
 * @throws BridgewardError KERNEL_ERROR when the text is not an nftables JSON listing.
 */
export function parseTableListing(json: string): TableListing {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new BridgewardError('KERNEL_ERROR', `nft listing is not JSON: ${(e as Error).message}`);
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) {
    throw new BridgewardError('KERNEL_ERROR', 'nft listing has no "nftables" array');
  }
  const elements: NatElement[] = [];
  let foreign = 0;
  const skeleton: unknown[] = [];
  for (const item of items as Record<string, Record<string, unknown>>[]) {
    if ('metainfo' in item) continue;
    const [kind, body] = Object.entries(item)[0] ?? [];
    if (!kind || !body) continue;
    const own = kind === 'map' && body.name === MAP_NAME;
    if (own && Array.isArray(body.elem)) {
      for (const raw of body.elem) {
        const e = parseElement(raw);
        if (e) elements.push(e);
        else foreign++;
      }
    }
    skeleton.push({ [kind]: without(body, own ? ['handle', 'elem'] : ['handle']) });
  }
  return { elements, foreign, structure: JSON.stringify(skeleton) };
}

function without(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

function parseElement(raw: unknown): NatElement | null {
  if (!Array.isArray(raw) || raw.length !== 2) return null;
  const key = (raw[0] as { concat?: unknown } | null)?.concat;
  const value = (raw[1] as { concat?: unknown } | null)?.concat;
  if (!Array.isArray(key) || !Array.isArray(value) || key.length !== 2 || value.length !== 2) {
    return null;
  }
  const [proto, hostPort] = key as unknown[];
  const [addr, port] = value as unknown[];
  if (proto !== 'tcp' && proto !== 'udp') return null;
  if (!isPort(hostPort) || !isPort(port) || typeof addr !== 'string') return null;
  return { proto, hostPort, addr, port };
}

function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}
