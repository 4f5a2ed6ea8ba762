/**
 * Deriving the view the registry publishes to one node: deriveNodeView (src/agent) on the part of the
 * cluster that concerns the node (nodes and KV; the apps and served apps by the same rules, here) — found through the state's indexes, so one view costs O(its size), not
 * O(cluster) — then the key rotation fields and the node's packages.
 */
import { deriveNodeView, type SnapshotNode } from '../../agent/index.js';
import type { AppConfig, ProjectConfig } from '../../core/cluster-model.js';
import type { ClusterState } from './cluster-state.js';
import { freezeRecord } from './store-ops.js';
import type { PackageState } from './packages.js';
import type { KeyState, PackageInfo, PublishedView } from './types.js';

/** What a derivation reads besides the cluster. */
export interface DeriveInputs {
  keys: ReadonlyMap<string, KeyState>;
  nowMs: number;
  /** The package `so/<bin>` now, or undefined when missing. */
  packageOf: (bin: string) => PackageState | undefined;
  /**
   * Peer entries already derived in this publish, by node name: views derived together share them (and
   * their app records with the cluster), which keeps views small in memory and on disk.
   */
  peers: Map<string, SnapshotNode>;
}

type AppEntry = { readonly rec: AppConfig; readonly ord: number };

/**
 * The view of `node` at `version`. A node's key fields come from its rotation state while the rotation
 * runs; once `oldKeyDisableAt` has passed the view carries the new key alone (old key '', times 0).
 * Throws IBP_ERR_REPLICA_UNKNOWN_NODE (from deriveNodeView) when the node is not defined.
 */
export function deriveView(state: ClusterState, node: string, version: number, inputs: DeriveInputs): PublishedView {
  const projects: ProjectConfig[] = [];
  const names = new Set<string>([...state.clientProjectsOf(node), ...state.serverProjectsOf(node)]);
  for (const name of names) {
    const p = state.getProject(name);
    if (p) projects.push(p);
  }
  const nodeNames = new Set<string>([node]);
  const appEntries = new Set<AppEntry>();
  for (const p of projects) {
    if (p.clientNodes.includes(node)) for (const s of p.serverNodes) nodeNames.add(s);
    for (const e of state.projectAppEntries(p)) appEntries.add(e);
  }
  const nodes = byOrd([...nodeNames], (n) => state.nodeEntry(n));
  const apps = [...appEntries].sort((a, b) => a.ord - b.ord).map((e) => e.rec);

  // deriveNodeView gives the nodes and the KV; it is given the projects without their apps, because the app
  // part is known here already (it would copy every app record, only for them to be dropped below)
  const v = deriveNodeView({ nodes, apps: [], projects: projects.map((p) => ({ ...p, apps: [] })) }, node);
  const servedSet = new Set<string>();
  for (const p of projects) if (p.serverNodes.includes(node)) for (const a of p.apps) servedSet.add(a);
  // deriveNodeView's rule: the apps of projects serving it, in cluster order, that the cluster defines
  const servedApps: string[] = [];
  for (const a of apps) if (servedSet.has(a.app)) servedApps.push(a.app);
  const nowSec = inputs.nowMs / 1000;
  const withKeys = (n: SnapshotNode): SnapshotNode => {
    const k = inputs.keys.get(n.name);
    if (k === undefined || nowSec >= k.oldKeyDisableAt) return freezeRecord(n);
    return freezeRecord({ ...n, oldKeyExp: k.oldKeyExp, newKeyEnableAt: k.newKeyEnableAt, oldKeyDisableAt: k.oldKeyDisableAt });
  };
  const viewNodes = v.nodes.map((n, i) => {
    if (i === 0) return withKeys(n);
    let shared = inputs.peers.get(n.name);
    if (shared === undefined) inputs.peers.set(n.name, (shared = withKeys(n)));
    return shared;
  });
  // the cluster's own (frozen) records: every app of the node's projects is in its view, in cluster order
  const viewApps = apps;
  const served = new Set(servedApps);
  const packages: PackageInfo[] = [];
  for (const app of viewApps) {
    if (!served.has(app.app)) continue;
    const p = inputs.packageOf(app.bin);
    if (p) packages.push({ app: app.app, bin: app.bin, sha256: p.sha256, size: p.size });
  }
  // frozen down to its arrays (the nodes are frozen above; app records are the cluster's own)
  return Object.freeze({
    node,
    version,
    nodes: Object.freeze(viewNodes),
    apps: Object.freeze(viewApps),
    servedApps: Object.freeze(servedApps),
    kv: Object.freeze(v.kv),
    packages: Object.freeze(packages.map((p) => Object.freeze(p))),
  }) as PublishedView;
}

/** The records of `names` that exist, sorted by their file-order rank. */
function byOrd<T>(names: string[], entry: (n: string) => { rec: T; ord: number } | undefined): T[] {
  const ranked: { rec: T; ord: number }[] = [];
  for (const n of names) {
    const e = entry(n);
    if (e !== undefined) ranked.push(e);
  }
  ranked.sort((a, b) => a.ord - b.ord);
  return ranked.map((r) => r.rec);
}
