/**
 * Reads `deploy/daemonset.yaml` and translates its pod spec, field by field, into a `podman run`
 * command line, so the image test runs the agent exactly as the DaemonSet would: host network
 * (here: a runner namespace standing in for the node), host pid namespace, the container's
 * command, environment, security context (capabilities, seccomp, no-new-privileges, read-only
 * root) and volumes (hostPath directories mapped to the test's own, the ConfigMap as files).
 * A field it does not know how to reproduce is an error, so the DaemonSet cannot grow a setting
 * the test silently ignores; scheduling-only fields are listed in `NOT_REPRODUCED`.
 *
 * @example
 * const deploy = readDeploy();
 * const argv = podmanRunArgs(deploy, { name: 'bw-x', image: 'bridgeward:0.1.0', netns: 'bw-1-r',
 *   nodeName: 'runner-1', configDir: '/tmp/cfg', hostPaths: { '/var/lib/bridgeward': '/tmp/s' } });
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../src/native.js';

/** The path of the DaemonSet manifest (ConfigMap and DaemonSet). */
export const DAEMONSET_FILE = join(REPO_ROOT, 'deploy', 'daemonset.yaml');

/** A Kubernetes object as parsed from YAML. */
export type K8sObject = { apiVersion: string; kind: string } & Record<string, unknown>;

/** The manifest's objects: every document, the ConfigMap's data and the DaemonSet. */
export interface Deploy {
  /** Every document of the file, in order. */
  readonly objects: readonly K8sObject[];
  /** `data` of the ConfigMap (file name -> content). */
  readonly configData: Readonly<Record<string, string>>;
  /** The DaemonSet object. */
  readonly daemonSet: K8sObject;
  /** Its pod spec (`spec.template.spec`). */
  readonly pod: PodSpec;
  /** Its one container. */
  readonly container: Container;
}

/** The subset of a pod spec the translation reads (everything else is refused or listed). */
export interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  volumes?: Volume[];
  [key: string]: unknown;
}

/** The subset of a container the translation reads. */
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: SecurityContext;
  volumeMounts?: {
    name: string;
    mountPath: string;
    readOnly?: boolean;
    mountPropagation?: string;
  }[];
  readinessProbe?: { exec?: { command: string[] } };
  [key: string]: unknown;
}

/** The container security context. */
export interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  seccompProfile?: { type: 'Unconfined' | 'RuntimeDefault' | 'Localhost' };
  capabilities?: { drop?: string[]; add?: string[] };
  [key: string]: unknown;
}

/** A pod volume. */
export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
  emptyDir?: { medium?: string; sizeLimit?: string };
}

/** Pod and container fields that only matter to a scheduler or a kubelet, not to the agent. */
export const NOT_REPRODUCED = {
  pod: ['dnsPolicy', 'priorityClassName', 'tolerations'],
  container: ['ports', 'livenessProbe', 'resources'],
} as const;

const POD_KNOWN = [
  'hostNetwork',
  'hostPID',
  'terminationGracePeriodSeconds',
  'containers',
  'volumes',
  ...NOT_REPRODUCED.pod,
];
const CONTAINER_KNOWN = [
  'name',
  'image',
  'command',
  'args',
  'env',
  'securityContext',
  'volumeMounts',
  'readinessProbe',
  ...NOT_REPRODUCED.container,
];
const SECURITY_KNOWN = [
  'privileged',
  'allowPrivilegeEscalation',
  'readOnlyRootFilesystem',
  'seccompProfile',
  'capabilities',
];

/** Parses the manifest. */
export function readDeploy(file = DAEMONSET_FILE): Deploy {
  const objects = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]?.message}`);
    return d.toJSON() as K8sObject;
  });
  const configMap = objects.find((o) => o.kind === 'ConfigMap');
  const daemonSet = objects.find((o) => o.kind === 'DaemonSet');
  if (!configMap || !daemonSet) throw new Error(`${file}: needs a ConfigMap and a DaemonSet`);
  const pod = (daemonSet as unknown as { spec: { template: { spec: PodSpec } } }).spec.template
    .spec;
  if (pod.containers.length !== 1) throw new Error(`${file}: expected one container`);
  return {
    objects,
    configData: (configMap as unknown as { data: Record<string, string> }).data,
    daemonSet,
    pod,
    container: pod.containers[0] as Container,
  };
}

/** Writes the ConfigMap's files into `dir` (mounted where the pod mounts the ConfigMap). */
export function writeConfigMap(deploy: Deploy, dir: string): void {
  for (const [file, text] of Object.entries(deploy.configData))
    writeFileSync(join(dir, file), text);
}

/** The capabilities the container adds (without a `CAP_` prefix). */
export function addedCapabilities(deploy: Deploy): string[] {
  return [...(deploy.container.securityContext?.capabilities?.add ?? [])];
}

/** How to run the pod here. */
export interface PodmanOptions {
  /** Container name. */
  readonly name: string;
  /** Local image reference. */
  readonly image: string;
  /** Network namespace standing in for the node's (`hostNetwork: true`). */
  readonly netns: string;
  /** Node name (for `fieldRef: spec.nodeName`). */
  readonly nodeName: string;
  /** Directory holding the ConfigMap's files (written by the caller, see `writeConfigMap`). */
  readonly configDir: string;
  /** hostPath path on a node -> the directory used here (a path not listed is used as it is). */
  readonly hostPaths: Readonly<Record<string, string>>;
  /** Replaces the DaemonSet's `capabilities.add` (the capability matrix drops one at a time). */
  readonly capabilities?: readonly string[];
  /** Replaces the DaemonSet's seccomp profile type. */
  readonly seccomp?: 'Unconfined' | 'RuntimeDefault';
}

/**
 * The `podman run` arguments (after `podman`) reproducing the pod spec.
 *
 * @throws Error naming a field the translation does not know how to reproduce.
 */
export function podmanRunArgs(deploy: Deploy, o: PodmanOptions): string[] {
  const { pod, container: c } = deploy;
  unknownKeys('pod spec', pod, POD_KNOWN);
  unknownKeys('container', c, CONTAINER_KNOWN);
  const sc = c.securityContext ?? {};
  unknownKeys('securityContext', sc, SECURITY_KNOWN);
  if (!pod.hostNetwork) throw new Error('the agent runs with hostNetwork: true');
  if (sc.privileged) throw new Error('a privileged container proves nothing about capabilities');
  const argv = ['run', '--detach', '--name', o.name, '--network', `ns:/run/netns/${o.netns}`];
  if (pod.hostPID) argv.push('--pid', 'host');
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) {
    throw new Error('securityContext.capabilities.drop must be [ALL]: only the listed ones');
  }
  argv.push('--cap-drop', 'all');
  for (const cap of o.capabilities ?? sc.capabilities?.add ?? []) argv.push('--cap-add', cap);
  const seccomp = o.seccomp ?? sc.seccompProfile?.type ?? 'RuntimeDefault';
  if (seccomp === 'Unconfined') argv.push('--security-opt', 'seccomp=unconfined');
  else if (seccomp !== 'RuntimeDefault') throw new Error(`seccompProfile ${seccomp} unsupported`);
  if (sc.allowPrivilegeEscalation === false) argv.push('--security-opt', 'no-new-privileges');
  if (sc.readOnlyRootFilesystem) argv.push('--read-only', '--read-only-tmpfs=false');
  for (const e of c.env ?? []) argv.push('--env', `${e.name}=${envValue(e, o)}`);
  for (const m of c.volumeMounts ?? []) argv.push(...mountArgs(deploy, m, o));
  if (c.command) argv.push('--entrypoint', JSON.stringify(c.command));
  argv.push(o.image, ...(c.args ?? []));
  return argv;
}

/** Seconds between SIGTERM and SIGKILL (`terminationGracePeriodSeconds`, default 30). */
export function gracePeriodSeconds(deploy: Deploy): number {
  return deploy.pod.terminationGracePeriodSeconds ?? 30;
}

function envValue(e: NonNullable<Container['env']>[number], o: PodmanOptions): string {
  if (e.value !== undefined) return e.value;
  if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') return o.nodeName;
  throw new Error(`env ${e.name}: only values and fieldRef spec.nodeName are reproduced`);
}

function mountArgs(
  deploy: Deploy,
  m: NonNullable<Container['volumeMounts']>[number],
  o: PodmanOptions,
): string[] {
  const v = deploy.pod.volumes?.find((x) => x.name === m.name);
  if (!v) throw new Error(`volumeMount ${m.name}: no such volume`);
  if (v.emptyDir) return ['--tmpfs', m.mountPath];
  const opts = [m.readOnly ? 'ro' : 'rw'];
  if (m.mountPropagation === 'HostToContainer') opts.push('rslave');
  else if (m.mountPropagation !== undefined && m.mountPropagation !== 'None') {
    throw new Error(`volumeMount ${m.name}: mountPropagation ${m.mountPropagation} unsupported`);
  }
  let source: string;
  if (v.configMap) source = o.configDir;
  else if (v.hostPath) source = o.hostPaths[v.hostPath.path] ?? v.hostPath.path;
  else throw new Error(`volume ${v.name}: only hostPath, configMap and emptyDir are reproduced`);
  return ['--volume', `${source}:${m.mountPath}:${opts.join(',')}`];
}

function unknownKeys(what: string, obj: object, known: readonly string[]): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k));
  if (extra.length) {
    throw new Error(`${what}: the image test does not reproduce ${extra.join(', ')}`);
  }
}
