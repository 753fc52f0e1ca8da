/**
 * The agent's logger: pino JSON lines on stderr-free stdout, one logger per process.
 *
 * @example
 * const log = createLogger('info');
 * log.info({ bridge: 'rt0' }, 'ready');
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/**
 * Creates the process logger. Secrets never go in log fields; the `redact` list is a second line
 * of defence for the obvious field names.
 */
export function createLogger(
  level: LogLevel,
  destination: NodeJS.WritableStream = process.stdout,
): Logger {
  return pino(
    {
      level,
      base: { name: 'bridgeward', pid: process.pid },
      redact: {
        paths: ['secret', '*.secret', 'authorization', '*.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
