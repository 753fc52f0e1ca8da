/** The agent's version, reported by `status`, `--version` and the `bridgeward_up` metric. */
export const VERSION = '0.1.0';
