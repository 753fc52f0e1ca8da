/**
 * The in-namespace half of `npm run bench -- nodeport`: run with `ip netns exec NS node
 * dist/bench/nodeport-worker.js MAPPINGS ROUNDS BRIDGE SUBNET`, it times (in the namespace's
 * network stack, where libnftables sees that namespace's tables) the full replace of the table
 * with MAPPINGS elements and, alternating pair by pair, one changed mapping among them in-process
 * (look-up + diff of that key + render + libnftables, as the agent applies an API change) and
 * through the `nft` binary. Prints one JSON line.
 *
 * @example
 * ip netns exec bw-1a2b3c-r node dist/bench/nodeport-worker.js 10000 30 rt0 10.8.64.0/24
 */
import { diffElements, renderDiff } from '../src/nodeport/diff.js';
import { byKey } from '../src/nodeport/desired.js';
import { elementKey, type NatElement } from '../src/nodeport/element.js';
import { libnftablesDriver, nftBinaryDriver, type NftDriver } from '../src/nodeport/nft-driver.js';
import { parseTableListing } from '../src/nodeport/readback.js';
import { LIST_TABLE, renderFullReplace, type TableSpec } from '../src/nodeport/ruleset.js';
import { loadNative } from '../src/native.js';
import { median } from './benchmark.js';

/** `count` mappings: tcp host ports 20000.. to backends spread over the subnet's first hosts. */
function benchElements(count: number, base = '10.8.64'): NatElement[] {
  return Array.from({ length: count }, (_, i) => ({
    proto: 'tcp' as const,
    hostPort: 20_000 + i,
    addr: `${base}.${10 + (i % 200)}`,
    port: 8080,
  }));
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Times one changed mapping the way the agent applies an API change: look up the applied
 * element, diff that key, render, one transaction; then update the applied map.
 */
async function change(
  nft: NftDriver,
  applied: Map<string, NatElement>,
  key: string,
  port: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  const cur = applied.get(key) as NatElement;
  const want = { ...cur, port };
  await nft.run(renderDiff(diffElements([cur], [want])) ?? '');
  applied.set(key, want);
  return ms(t0);
}

async function main(argv: string[]): Promise<void> {
  const [mappings, rounds, bridge, subnet] = [Number(argv[0]), Number(argv[1]), argv[2], argv[3]];
  const spec: TableSpec = { bridge: bridge ?? 'rt0', subnet: subnet ?? '10.8.64.0/24' };
  const { addon, error } = loadNative();
  if (!addon) throw new Error(`the addon is needed for the in-process figures: ${error}`);
  const inproc = libnftablesDriver(addon.nftRun.bind(addon));
  const binary = nftBinaryDriver();
  const current = benchElements(mappings);
  const full: number[] = [];
  const fullVerified: number[] = [];
  for (let r = 0; r < Math.min(rounds, 10); r++) {
    const t0 = process.hrtime.bigint();
    await inproc.run(renderFullReplace(spec, current));
    full.push(ms(t0));
    const back = parseTableListing(await inproc.run(LIST_TABLE, true));
    fullVerified.push(ms(t0));
    if (back.elements.length !== mappings) throw new Error('read-back after full replace differs');
  }
  const a: number[] = [];
  const b: number[] = [];
  const applied = byKey(current);
  const key = elementKey(current[Math.floor(mappings / 2)] as NatElement);
  for (let i = 0; i < rounds; i++) {
    a.push(await change(inproc, applied, key, 9000 + 2 * i));
    b.push(await change(binary, applied, key, 9001 + 2 * i));
  }
  process.stdout.write(
    `${JSON.stringify({
      full_replace_ms: median(full),
      full_replace_verified_ms: median(fullVerified),
      change_inprocess_ms: median(a),
      change_nft_exec_ms: median(b),
      speedup_vs_nft_exec: median(b.map((v, i) => v / (a[i] as number))),
    })}\n`,
  );
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
