/**
 * Waits for the sandbox bridge to exist, driven by rtnetlink link events (no polling).
 *
 * @example
 * const bridge = await waitForBridge(rtnl, 'rt0', log, abortSignal);
 */
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LinkInfo, Rtnl } from './rtnl.js';

/**
 * Resolves with the bridge once a link of kind `bridge` named `name` exists. Logs once that it is
 * waiting. Rejects when `signal` aborts, or when `name` exists but is not a bridge.
 */
export async function waitForBridge(
  rtnl: Rtnl,
  name: string,
  log: Logger,
  signal: AbortSignal,
): Promise<LinkInfo> {
  let settle: { resolve: (l: LinkInfo) => void; reject: (e: Error) => void } | undefined;
  const found = new Promise<LinkInfo>((resolve, reject) => (settle = { resolve, reject }));
  const check = (link: LinkInfo | null) => {
    if (!link || link.name !== name) return;
    if (link.kind === 'bridge') settle?.resolve(link);
    else
      settle?.reject(
        new BridgewardError(
          'INVALID_ARGUMENT',
          `--bridge ${name} exists but is a ${link.kind ?? 'plain'} link, not a bridge`,
        ),
      );
  };
  // Subscribe before the dump so a bridge created in between is not missed.
  const unsubscribe = rtnl.subscribe(
    ['LINK'],
    (e) => {
      if (e.type === 'link' && !e.deleted) check(e.link);
    },
    () => void rtnl.linkByName(name).then(check, (err: Error) => settle?.reject(err)),
  );
  const onAbort = () =>
    settle?.reject(new BridgewardError('NOT_READY', `stopped while waiting for bridge ${name}`));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const existing = await rtnl.linkByName(name);
    if (existing) check(existing);
    else log.warn({ bridge: name }, `waiting for bridge ${name} to appear`);
    return await found;
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
  }
}
