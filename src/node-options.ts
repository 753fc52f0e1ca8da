/**
 * The Node.js options the agent runs with wherever it is deployed (the systemd unit, the image
 * and the test bed set them as `NODE_OPTIONS`; a unit test checks that each one does):
 *
 * - `--max-semi-space-size=1`: a young generation of 1 MB semi-spaces instead of up to 16 MB.
 *   A node agent's requests are small and its heap is a few tens of MB. Measured: 10,000
 *   allocate+release pairs over 8 clients took 277-324 ms of agent CPU per 1,000 pairs with it
 *   and 281-311 ms without (two runs each: no difference beyond the noise), and the agent ended
 *   at 91 MB RSS instead of 117 MB; at runner scale (250 leases, 10,000 node ports) 83 MB
 *   instead of 106 MB.
 * - `--v8-pool-size=1`: one V8 worker thread for background GC and compilation instead of one
 *   per core: fewer threads waking on an idle runner, less memory.
 *
 * @example
 * spawn('node', [bin, 'run'], { env: { ...process.env, NODE_OPTIONS: AGENT_NODE_OPTIONS } });
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=1 --v8-pool-size=1';
