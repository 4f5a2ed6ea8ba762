/**
 * A node's view as the registry sends it (`GET /v1/view`, docs/registry-contract §2) and its conversion into
 * the data of a local snapshot: keys decrypted, the client settings of `ibma.conf` added.
 */
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { IbpError } from '../core/errors.js';
import { decryptKeyExp } from './key-decrypt.js';
import type { PackageInfo } from './package-sync.js';
import type { SnapshotData, SnapshotNode, SnapshotRecord } from './snapshot-format.js';

/** One node of a view on the wire: like {@link SnapshotNode}, with the keys encrypted for the requester. */
export interface RegistryViewNode extends Omit<SnapshotNode, 'keyExp' | 'oldKeyExp'> {
  keyExpEnc: string;
  oldKeyExpEnc: string;
}

/** A node's view on the wire (the registry's `PublishedView` with encrypted keys). */
export interface RegistryView {
  node: string;
  version: number;
  nodes: RegistryViewNode[];
  apps: SnapshotData['apps'];
  servedApps: string[];
  kv: Record<string, string>;
  packages: PackageInfo[];
}

const count = z.number().int().nonnegative();
const kvSchema = z.custom<Record<string, string>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'),
  { message: 'an object of strings' },
);
const wireViewSchema = z.object({
  node: z.string().min(1),
  version: z.number().int().positive(),
  nodes: z.array(z.object({
    name: z.string().min(1),
    invalid: z.boolean(),
    hosts: z.array(z.object({ ip: z.string().min(1), port: z.number().int().min(0).max(65535), clientOnly: z.boolean(), invalid: z.boolean() })),
    keyExpEnc: z.string(),
    oldKeyExpEnc: z.string().default(''),
    newKeyEnableAt: count,
    oldKeyDisableAt: count,
    kv: kvSchema,
  })),
  apps: z.array(z.object({
    app: z.string().min(1),
    desc: z.string(),
    bin: z.string(),
    timeout: z.number().nonnegative(),
    timeout2: z.number().nonnegative(),
    serverNode: z.string(),
    invalid: z.boolean(),
  })),
  servedApps: z.array(z.string()),
  kv: kvSchema.default({}),
  packages: z.array(z.object({ app: z.string(), bin: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: count })).default([]),
});

/**
 * Checks a view received from the registry. Throws IBP_ERR_AGENT_VIEW when it does not have the wire shape,
 * is for another node than `thisNode`, or does not list `thisNode` first among its nodes.
 */
export function parseRegistryView(body: unknown, thisNode: string): RegistryView {
  const r = wireViewSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new IbpError('IBP_ERR_AGENT_VIEW', `view from the registry: ${path}: ${issue?.message ?? 'invalid'}`);
  }
  const view = r.data as RegistryView;
  if (view.node !== thisNode) {
    throw new IbpError('IBP_ERR_AGENT_VIEW', `the registry sent the view of node ${view.node}, this agent is node ${thisNode} (ibma.this_node)`);
  }
  if (view.nodes[0]?.name !== thisNode) {
    throw new IbpError('IBP_ERR_AGENT_VIEW', `view ${view.version} of node ${thisNode} does not list ${thisNode} first among its nodes`);
  }
  return view;
}

/** The settings a snapshot takes from `ibma.conf`. */
export type SnapshotSettings = Pick<SnapshotData, 'thisNode' | 'ibmsServer' | 'retryConnectTimevalSec' | 'connectingTimeoutSec' | 'minCompressSize'>;

/**
 * The snapshot data of a view: every `keyExpEnc`/`oldKeyExpEnc` decrypted with this node's private key
 * (IBP_ERR_AGENT_KEY when one cannot be), the `ibma.conf` settings added.
 */
export function viewToSnapshotData(view: RegistryView, key: KeyObject, settings: SnapshotSettings): SnapshotData {
  const nodes: SnapshotNode[] = view.nodes.map((n, i) => ({
    name: n.name,
    invalid: n.invalid,
    hosts: n.hosts.map((h) => ({ ip: h.ip, port: h.port, clientOnly: h.clientOnly, invalid: h.invalid })),
    keyExp: decryptKeyExp(key, n.keyExpEnc, `node ${n.name} keyExpEnc`),
    oldKeyExp: decryptKeyExp(key, n.oldKeyExpEnc, `node ${n.name} oldKeyExpEnc`),
    newKeyEnableAt: n.newKeyEnableAt,
    oldKeyDisableAt: n.oldKeyDisableAt,
    // This node's KV is in nodes[0].kv and in view.kv; take either (the registry fills both).
    kv: i === 0 && Object.keys(n.kv).length === 0 ? { ...view.kv } : { ...n.kv },
  }));
  return {
    thisNode: settings.thisNode,
    ibmsServer: { ip: settings.ibmsServer.ip, port: settings.ibmsServer.port },
    retryConnectTimevalSec: settings.retryConnectTimevalSec,
    connectingTimeoutSec: settings.connectingTimeoutSec,
    minCompressSize: settings.minCompressSize,
    nodes,
    apps: view.apps.map((a) => ({ ...a })),
    servedApps: [...view.servedApps],
  };
}

/** True when a snapshot record holds exactly `data` (version and creation time aside). */
export function sameSnapshotContent(data: SnapshotData, record: SnapshotRecord): boolean {
  return canonicalContent(data) === canonicalContent(record);
}

function canonicalContent(d: Omit<SnapshotData, 'createdAtMs'>): string {
  return stableStringify({
    thisNode: d.thisNode,
    ibmsServer: d.ibmsServer,
    retryConnectTimevalSec: d.retryConnectTimevalSec,
    connectingTimeoutSec: d.connectingTimeoutSec,
    minCompressSize: d.minCompressSize,
    nodes: d.nodes.map((n) => ({ ...n, oldKeyExp: n.oldKeyExp ?? '' })),
    apps: d.apps,
    servedApps: d.servedApps,
  });
}

/** JSON with object keys sorted at every level (arrays keep their order). */
function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
