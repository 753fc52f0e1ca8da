/**
 * Prints results: aligned tables for people, JSON for machines.
 *
 * @example
 * printResult('table', rows, [['IP', (r) => r.ip], ['SANDBOX', (r) => r.sandbox]]);
 */
import type { OutputFormat } from './args.js';

/** A table column: header and how to render a row's cell. */
export type Column<T> = readonly [header: string, cell: (row: T) => unknown];

/** Renders rows as an aligned plain-text table (no trailing spaces). */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map(([, f]) => cellText(f(r))));
  const headers = columns.map(([h]) => h);
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...cells.map((c) => (c[i] as string).length)),
  );
  const line = (cs: string[]) =>
    cs
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return v.length ? v.join(',') : '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Prints `data` as JSON, or as a table (arrays) / key-value list (objects). */
export function printResult<T>(
  format: OutputFormat,
  data: T | readonly T[],
  columns?: readonly Column<T>[],
): void {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(data, null, 2) + '\n');
    return;
  }
  if (Array.isArray(data)) {
    if (!columns) throw new Error('printResult: table output of an array needs columns');
    process.stdout.write(data.length ? formatTable(data, columns) : '(none)\n');
    return;
  }
  process.stdout.write(formatKeyValues(data as Record<string, unknown>));
}

/** Renders an object as `key: value` lines, nested objects flattened with dots. */
export function formatKeyValues(obj: Record<string, unknown>, prefix = ''): string {
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      out += formatKeyValues(v as Record<string, unknown>, `${prefix}${k}.`);
    else out += `${prefix}${k}: ${cellText(v)}\n`;
  }
  return out;
}
