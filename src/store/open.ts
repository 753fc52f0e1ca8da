/**
 * Opens the lease store the configuration asks for: the SQLite file `leases.db` in the state
 * dir (default) or an etcd cluster (`etcd://host:port[,host:port]`).
 *
 * @example
 * const store = await openStore(cfg, log);
 * await store.close();
 */
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { openSqliteStore } from './sqlite.js';
import type { LeaseStore } from './types.js';

/** File name of the SQLite store inside the state dir. */
export const SQLITE_FILE = 'leases.db';

/**
 * Opens the configured backend and logs which one.
 *
 * @throws BridgewardError STORE_UNAVAILABLE when the store cannot be opened or reached.
 */
export async function openStore(
  cfg: Pick<Config, 'store' | 'stateDir'>,
  log: Logger,
): Promise<LeaseStore> {
  if (cfg.store.kind === 'sqlite') {
    const path = join(cfg.stateDir, SQLITE_FILE);
    const store = openSqliteStore(path);
    log.info({ store: 'sqlite', path }, 'store opened');
    return store;
  }
  // The etcd client and its gRPC stack (~25 MB resident) load only when etcd is configured.
  const { openEtcdStore } = await import('./etcd.js');
  const store = await openEtcdStore(cfg.store.endpoints);
  log.info({ store: 'etcd', endpoints: cfg.store.endpoints }, 'store opened');
  return store;
}
