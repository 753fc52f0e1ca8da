/**
 * `npm run bench -- NAME`: runs one side-by-side benchmark (bridgeward and its peer in the same
 * run, in namespaces it creates and removes itself). Progress goes to stderr; the last line on
 * stdout is one JSON object with the figures and ratios (keys in shared/design/BENCH.md).
 */
import type { Benchmark } from './benchmark.js';
import { dataplaneBench } from './dataplane.js';
import { cniBench } from './cni.js';
import { detectBench } from './detect.js';
import { guardBench } from './guard.js';
import { ipamBench } from './ipam.js';
import { nodeportBench } from './nodeport.js';
import { scaleBench } from './scale.js';

/** Every benchmark by name. Each issue that names one adds it here. */
export const BENCHMARKS: Record<string, Benchmark> = {
  dataplane: dataplaneBench,
  cni: cniBench,
  detect: detectBench,
  guard: guardBench,
  ipam: ipamBench,
  nodeport: nodeportBench,
  scale: scaleBench,
};

async function main(argv: string[]): Promise<number> {
  const name = argv[0];
  const bench = name ? BENCHMARKS[name] : undefined;
  if (!bench) {
    const known = Object.keys(BENCHMARKS);
    process.stderr.write(
      `usage: npm run bench -- NAME [options]\nknown benchmarks: ${known.length ? known.join(', ') : '(none yet)'}\n`,
    );
    return 2;
  }
  const result = await bench.run(argv.slice(1));
  process.stdout.write(`${JSON.stringify({ bench: name, ...result })}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
