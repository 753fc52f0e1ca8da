/**
 * Node-port API: `GET /v1/ports`, `POST /v1/ports` (add or move one), `DELETE
 * /v1/ports/:proto/:hostPort`. Bodies and parameters are JSON-schema-validated; the store
 * decides ownership (PORT_IN_USE, UNKNOWN_SANDBOX, UNKNOWN_PORT).
 *
 * @example
 * app.register(portRoutes(nodePorts));
 * // POST /v1/ports {"sandbox":"app-2","proto":"tcp","hostPort":6667,"port":8080}
 */
import type { NodePorts } from '../nodeport/node-ports.js';
import { PROTOS, type Proto } from '../nodeport/element.js';
import type { ApiRoutes } from './server.js';

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const proto = { type: 'string', enum: PROTOS } as const;

/** Body of `POST /v1/ports`. */
export interface PortAddBody {
  /** Sandbox that must hold an active lease. */
  sandbox: string;
  /** tcp or udp. */
  proto: Proto;
  /** Port on the runner. */
  hostPort: number;
  /** Port inside the sandbox. */
  port: number;
}

/** Route plugin for node ports, backed by the node-port shell. */
export function portRoutes(nodePorts: Pick<NodePorts, 'add' | 'remove' | 'list'>): ApiRoutes {
  return (app) => {
    app.get('/v1/ports', async () => nodePorts.list());
    app.post<{ Body: PortAddBody }>(
      '/v1/ports',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['sandbox', 'proto', 'hostPort', 'port'],
            properties: {
              sandbox: { type: 'string', minLength: 1, maxLength: 128 },
              proto,
              hostPort: port,
              port,
            },
          },
        },
      },
      async (req, reply) => reply.status(201).send(await nodePorts.add(req.body)),
    );
    app.delete<{ Params: { proto: Proto; hostPort: number } }>(
      '/v1/ports/:proto/:hostPort',
      {
        schema: {
          params: {
            type: 'object',
            required: ['proto', 'hostPort'],
            properties: { proto, hostPort: port },
          },
        },
      },
      async (req) => nodePorts.remove(req.params.proto, req.params.hostPort),
    );
  };
}
