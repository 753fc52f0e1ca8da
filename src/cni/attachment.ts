/**
 * A CNI attachment (container id + interface name inside the container) and the agent's sandbox
 * id that names its lease: `<container id>.<ifname>`. The interface name may not contain a dot,
 * so the id splits back at its last dot and two attachments never share one. Pure.
 *
 * @example
 * sandboxIdOf({ containerId: '3f69ab', ifname: 'eth0' }); // '3f69ab.eth0'
 * attachmentProblem({ containerId: '3f69ab', ifname: 'eth0.5' }); // 'CNI_IFNAME "eth0.5": ...'
 */

/** One attachment of a container to the network. */
export interface Attachment {
  /** `CNI_CONTAINERID`. */
  readonly containerId: string;
  /** `CNI_IFNAME`: the interface inside the container. */
  readonly ifname: string;
}

/** The spec's container id: alphanumeric first, then alphanumerics, `_`, `.` or `-`. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Interface names the sandbox id can carry: no dot (the separator), at most 15 characters. */
const IFNAME = /^[A-Za-z0-9_-]{1,15}$/;
/** The agent's longest sandbox id. */
const MAX_SANDBOX_ID = 128;

/**
 * Why an attachment cannot name a lease (naming the variable), or null when it can.
 *
 * @example
 * attachmentProblem({ containerId: '-x', ifname: 'eth0' }); // 'CNI_CONTAINERID "-x": ...'
 */
export function attachmentProblem(a: Attachment): string | null {
  if (!CONTAINER_ID.test(a.containerId)) {
    return `CNI_CONTAINERID ${JSON.stringify(a.containerId)}: expected a letter or digit, then letters, digits, "_", "." or "-"`;
  }
  if (!IFNAME.test(a.ifname)) {
    return `CNI_IFNAME ${JSON.stringify(a.ifname)}: bridgeward needs 1..15 letters, digits, "_" or "-"`;
  }
  const length = a.containerId.length + 1 + a.ifname.length;
  if (length > MAX_SANDBOX_ID) {
    return `CNI_CONTAINERID is ${a.containerId.length} characters: with CNI_IFNAME the lease's sandbox id would have ${length}, at most ${MAX_SANDBOX_ID}`;
  }
  return null;
}

/**
 * The sandbox id of an attachment (check `attachmentProblem` first).
 *
 * @example
 * sandboxIdOf({ containerId: 'c1', ifname: 'net1' }); // 'c1.net1'
 */
export function sandboxIdOf(a: Attachment): string {
  return `${a.containerId}.${a.ifname}`;
}
