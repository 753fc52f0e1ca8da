/**
 * Server-sent events (text/event-stream) framing: formatting one event and parsing a stream of
 * chunks back into events. Pure.
 *
 * @example
 * formatSse({ event: 'raised', data: '{"ip":"10.8.64.2"}', id: '7' });
 * // 'id: 7\nevent: raised\ndata: {"ip":"10.8.64.2"}\n\n'
 * const p = new SseParser();
 * p.push('event: raised\ndata: {}\n\n'); // [{ event: 'raised', data: '{}', id: null }]
 */

/** One server-sent event. */
export interface SseEvent {
  /** Event name (`message` when the stream gave none). */
  readonly event: string;
  /** Data lines joined with newlines. */
  readonly data: string;
  /** Event id, or null. */
  readonly id: string | null;
}

/** Formats one event; multi-line data becomes several `data:` lines. */
export function formatSse(e: { event: string; data: string; id?: string | number }): string {
  const id = e.id === undefined ? '' : `id: ${e.id}\n`;
  const data = e.data
    .split('\n')
    .map((l) => `data: ${l}\n`)
    .join('');
  return `${id}event: ${e.event}\n${data}\n`;
}

/** Incremental parser: feed text chunks, get complete events. Comments (`: ...`) are skipped. */
export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];
  #id: string | null = null;

  /** Adds a chunk; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line === '') {
        if (this.#data.length > 0) {
          out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
        }
        this.#event = '';
        this.#data = [];
        this.#id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') this.#event = value;
      else if (field === 'data') this.#data.push(value);
      else if (field === 'id') this.#id = value;
    }
    return out;
  }
}
