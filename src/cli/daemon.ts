/**
 * `bridgeward run`: the daemon. Parses flags (and an optional `--config` JSON file), validates
 * everything up front, starts the agent and stops it cleanly on SIGTERM/SIGINT within 2 s.
 * `--check-config` stops after the validation (see `check-config.ts`). The agent and the logger
 * are imported only when `run` runs, so client verbs never load them.
 */
import { CONFIG_KEYS, readConfigFile, resolveConfig, type RawConfig } from '../config.js';
import { parseVerbArgs, resolveOutput } from './args.js';
import { printConfigCheck } from './check-config.js';
import { invalid } from '../errors.js';
import type { Verb } from './verb.js';

const STOP_DEADLINE_MS = 2000;

/** kebab-case flag name of a config key (`stateDir` -> `state-dir`). */
function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

const RUN_OPTIONS = Object.fromEntries([
  ['config', { type: 'string' }],
  ['check-config', { type: 'boolean' }],
  ['output', { type: 'string', short: 'o' }],
  ...CONFIG_KEYS.map((k) => [flagName(k), { type: 'string' }]),
]) as Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** The `run` verb. */
export const daemonVerbs: Verb[] = [
  {
    words: ['run'],
    summary: 'run the agent (daemon) on this runner',
    usage: `bridgeward run --subnet CIDR [--config FILE] [--check-config [-o json]] ${CONFIG_KEYS.filter(
      (k) => k !== 'subnet',
    )
      .map((k) => `[--${flagName(k)} V]`)
      .join(' ')}`,
    async run(argv) {
      const { values } = parseVerbArgs(argv, RUN_OPTIONS);
      const flags: RawConfig = {};
      for (const key of CONFIG_KEYS) {
        const v = values[flagName(key)];
        if (typeof v === 'string') (flags as Record<string, string>)[key] = v;
      }
      const file = typeof values.config === 'string' ? readConfigFile(values.config) : {};
      const cfg = resolveConfig(flags, file);
      if (values['check-config'] === true)
        return printConfigCheck(cfg, resolveOutput(values.output as string | undefined));
      if (values.output !== undefined) throw invalid('-o goes with --check-config');
      const [{ createLogger }, { startAgent }] = await Promise.all([
        import('../log.js'),
        import('../agent.js'),
      ]);
      const log = createLogger(cfg.logLevel);
      const abort = new AbortController();
      const agentReady = startAgent(cfg, log, abort.signal);
      const stopped = new Promise<number>((resolve) => {
        const onSignal = (sig: NodeJS.Signals) => {
          if (abort.signal.aborted) return;
          log.info({ signal: sig }, 'stopping');
          abort.abort();
          setTimeout(() => {
            log.error('stop deadline passed; exiting');
            process.exit(1);
          }, STOP_DEADLINE_MS).unref();
          void agentReady
            .then(
              (a) => a.stop(),
              () => undefined,
            )
            .then(() => {
              log.info('stopped');
              resolve(0);
            });
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      try {
        await agentReady;
      } catch (e) {
        if (abort.signal.aborted) return await stopped;
        throw e;
      }
      return await stopped;
    },
  },
];
