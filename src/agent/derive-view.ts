/**
 * Derivation of one node's view of the cluster (the original's ibms "derive" step, feature #7): which
 * nodes, apps and KV entries a node's local replica holds. Until the registry distributes views, the
 * replica builder (`ibp local-config`) calls this on the whole cluster config.
 */
import type { AppConfig, ClusterConfig, NodeConfig } from '../core/cluster-model.js';
import { IbpError } from '../core/errors.js';
import type { SnapshotNode } from './snapshot-format.js';

/** What one node may see of the cluster. */
export interface NodeView {
  /** This node first, then the server nodes it may call, in cluster order. */
  nodes: SnapshotNode[];
  /** The apps it may call (as a client) or serves (as a server), in cluster order. */
  apps: AppConfig[];
  /** The apps it serves: those of every project that lists it among `serverNodes`. */
  servedApps: string[];
  /** This node's own KV config. */
  kv: Record<string, string>;
}

/**
 * Derives the view of `thisNode`:
 * - the node itself (with its KV);
 * - for every project where it is a client node: the project's server nodes (hosts and keys, without
 *   their KV, which is theirs alone) and the project's apps;
 * - for every project where it is a server node: the project's apps, which it serves.
 * An app keeps its `serverNode` default even when that node is outside the view. Names a project lists
 * that the cluster does not define are skipped (the config loader reports them). Key timestamps are 0:
 * only the registry knows rotation times.
 * Throws IBP_ERR_REPLICA_UNKNOWN_NODE when `thisNode` is not a node of the cluster.
 * @example
 * const view = deriveNodeView(loadClusterConfig(home.etc), 'CORE');
 */
export function deriveNodeView(cluster: ClusterConfig, thisNode: string): NodeView {
  const self = cluster.nodes.find((n) => n.node === thisNode);
  if (!self) {
    throw new IbpError('IBP_ERR_REPLICA_UNKNOWN_NODE', `node '${thisNode}' is not defined in the cluster config (ibp_nodes.conf)`);
  }
  const visibleNodes = new Set<string>([thisNode]);
  const visibleApps = new Set<string>();
  const served = new Set<string>();
  for (const p of cluster.projects) {
    if (p.clientNodes.includes(thisNode)) {
      for (const s of p.serverNodes) visibleNodes.add(s);
      for (const a of p.apps) visibleApps.add(a);
    }
    if (p.serverNodes.includes(thisNode)) {
      for (const a of p.apps) {
        visibleApps.add(a);
        served.add(a);
      }
    }
  }
  const nodes: SnapshotNode[] = [toSnapshotNode(self, true)];
  for (const n of cluster.nodes) {
    if (n.node !== thisNode && visibleNodes.has(n.node)) nodes.push(toSnapshotNode(n, false));
  }
  const apps = cluster.apps.filter((a) => visibleApps.has(a.app)).map((a) => ({ ...a }));
  const known = new Set(apps.map((a) => a.app));
  const servedApps = cluster.apps.map((a) => a.app).filter((a) => served.has(a) && known.has(a));
  return { nodes, apps, servedApps, kv: { ...self.kv } };
}

function toSnapshotNode(n: NodeConfig, withKv: boolean): SnapshotNode {
  return {
    name: n.node,
    invalid: n.invalid,
    hosts: n.hosts.map((h) => ({ ip: h.ip, port: Math.abs(h.port), clientOnly: h.clientOnly, invalid: h.invalid })),
    keyExp: n.keyExp,
    oldKeyExp: '',
    newKeyEnableAt: 0,
    oldKeyDisableAt: 0,
    kv: withKv ? { ...n.kv } : {},
  };
}
