/**
 * One node-port element of the agent's nftables map: `proto . hostPort : addr . port`. The map
 * key is (proto, host port); the value is the backend (sandbox address, container port).
 *
 * @example
 * const e: NatElement = { proto: 'tcp', hostPort: 6667, addr: '10.8.64.7', port: 8080 };
 * elementKey(e); // 'tcp . 6667'
 */

/** Transport protocols a node port can carry. */
export const PROTOS = ['tcp', 'udp'] as const;

/** A transport protocol a node port can carry. */
export type Proto = (typeof PROTOS)[number];

/** One map element: (proto, host port) leads to (addr, port). */
export interface NatElement {
  /** Transport protocol. */
  readonly proto: Proto;
  /** Port on the runner, 1..65535. */
  readonly hostPort: number;
  /** Backend address (the sandbox's leased address). */
  readonly addr: string;
  /** Backend port inside the sandbox, 1..65535. */
  readonly port: number;
}

/**
 * The map key of an element in nft syntax, also used as its identity in diffs.
 *
 * @example elementKey({ proto: 'udp', hostPort: 53, addr: '10.8.64.9', port: 5353 }); // 'udp . 53'
 */
export function elementKey(e: Pick<NatElement, 'proto' | 'hostPort'>): string {
  return `${e.proto} . ${e.hostPort}`;
}

/**
 * The whole element (key and value) in nft syntax.
 *
 * @example formatElement({ proto: 'tcp', hostPort: 80, addr: '10.8.64.2', port: 8080 }); // 'tcp . 80 : 10.8.64.2 . 8080'
 */
export function formatElement(e: NatElement): string {
  return `${elementKey(e)} : ${e.addr} . ${e.port}`;
}

/** True when two elements have the same key and the same value. */
export function sameElement(a: NatElement, b: NatElement): boolean {
  return a.proto === b.proto && a.hostPort === b.hostPort && a.addr === b.addr && a.port === b.port;
}
