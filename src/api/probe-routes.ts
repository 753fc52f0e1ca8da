/**
 * `POST /v1/probe {"ip": "...", "timeoutMs"?: N}`: sends an RFC 5227 ARP probe from the agent
 * and answers with every MAC that replied (an empty array when nobody did).
 *
 * @example
 * app.register(probeRoutes((ip, timeoutMs) => pipeline.probe(ip, timeoutMs)));
 */
import { invalid } from '../errors.js';
import { isIp } from '../net/ipv4.js';
import type { ApiRoutes } from './server.js';

/** One MAC that answered a probe. */
export interface ProbeAnswer {
  /** Lowercase colon-separated MAC. */
  readonly mac: string;
  /** Name of the bridge port it answered on, when known. */
  readonly port: string | null;
  /** ifindex of that port, when known. */
  readonly ifindex: number | null;
  /** Sandbox whose lease is bound to that MAC or port, when any. */
  readonly sandbox: string | null;
  /** Time from the probe to the answer (ms). */
  readonly rttMs: number;
}

/** Sends a probe and collects the answers. */
export type Prober = (ip: string, timeoutMs: number) => Promise<ProbeAnswer[]>;

/** Default time to wait for answers (ms). */
export const DEFAULT_PROBE_TIMEOUT_MS = 500;

/** Route plugin for `/v1/probe`. */
export function probeRoutes(probe: Prober): ApiRoutes {
  return (app) => {
    app.post<{ Body: { ip: string; timeoutMs?: number } }>(
      '/v1/probe',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['ip'],
            properties: {
              ip: { type: 'string', maxLength: 15 },
              timeoutMs: { type: 'integer', minimum: 10, maximum: 10_000 },
            },
          },
        },
      },
      async (req) => {
        const { ip, timeoutMs } = req.body;
        if (!isIp(ip)) throw invalid(`ip ${JSON.stringify(ip)}: expected an IPv4 address`);
        return probe(ip, timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
      },
    );
  };
}
