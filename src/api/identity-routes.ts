/**
 * Workload-identity API on the agent's socket: `POST /v1/identities` (register),
 * `GET /v1/identities/:sandbox`, `POST /v1/identities/:sandbox/rotate`,
 * `DELETE /v1/identities/:sandbox` (revoke) and `POST /v1/identity-keys/rotate`. Bodies and
 * parameters are JSON-schema-validated; register and rotate answer with the secret, once. With
 * identity off, `identityOffRoutes` answers those paths with a clear MISSING_FEATURE.
 *
 * @example
 * app.register(identityRoutes({ registry, keys }));
 * // POST /v1/identities {"sandbox":"app-1","app":"web","audiences":["vault"]}
 */
import { BridgewardError } from '../errors.js';
import { SANDBOX_ID_PATTERN } from '../ipam/sandbox-id.js';
import type { IdentityRegistry } from '../identity/registry.js';
import type { NodeKeys } from '../identity/node-keys.js';
import type { ApiRoutes } from './server.js';

const sandbox = { type: 'string', pattern: SANDBOX_ID_PATTERN } as const;
const name = { type: 'string', minLength: 1, maxLength: 256, pattern: '^\\S+$' } as const;
const sandboxParams = {
  type: 'object',
  required: ['sandbox'],
  properties: { sandbox },
} as const;

/** Body of `POST /v1/identities`. */
export interface RegisterBody {
  /** Sandbox id (must hold an active lease). */
  sandbox: string;
  /** Optional application name. */
  app?: string;
  /** Audiences tokens may be issued for (default: `bridgeward`). */
  audiences?: string[];
}

/** Route plugin for identities, backed by the registry and the node keys. */
export function identityRoutes(deps: {
  registry: Pick<IdentityRegistry, 'register' | 'rotate' | 'revoke' | 'show'>;
  keys: Pick<NodeKeys, 'rotate'>;
}): ApiRoutes {
  const { registry, keys } = deps;
  return (app) => {
    app.post<{ Body: RegisterBody }>(
      '/v1/identities',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['sandbox'],
            properties: {
              sandbox,
              app: name,
              audiences: { type: 'array', items: name, maxItems: 16 },
            },
          },
        },
      },
      async (req, reply) =>
        reply.status(201).send(
          await registry.register(
            {
              sandbox: req.body.sandbox,
              app: req.body.app ?? null,
              audiences: req.body.audiences ?? [],
            },
            new Date(),
          ),
        ),
    );
    app.get<{ Params: { sandbox: string } }>(
      '/v1/identities/:sandbox',
      { schema: { params: sandboxParams } },
      async (req) => registry.show(req.params.sandbox),
    );
    app.post<{ Params: { sandbox: string } }>(
      '/v1/identities/:sandbox/rotate',
      { schema: { params: sandboxParams } },
      async (req) => registry.rotate(req.params.sandbox, new Date()),
    );
    app.delete<{ Params: { sandbox: string } }>(
      '/v1/identities/:sandbox',
      { schema: { params: sandboxParams } },
      async (req) => registry.revoke(req.params.sandbox, new Date()),
    );
    app.post('/v1/identity-keys/rotate', async () => keys.rotate(new Date()));
  };
}

/** Route plugin for an agent run with `--identity-listen off`: every identity call says so. */
export function identityOffRoutes(): ApiRoutes {
  return (app) => {
    const off = async () => {
      throw new BridgewardError(
        'MISSING_FEATURE',
        'workload identity is off on this agent (--identity-listen off)',
      );
    };
    app.all('/v1/identities', off);
    app.all('/v1/identities/*', off);
    app.all('/v1/identity-keys/*', off);
  };
}
