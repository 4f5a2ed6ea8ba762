/**
 * What the journal and the checkpoint hold: the *resulting state* of each touched record (a whole node,
 * app or project put, or its deletion), key rotation states, pending marks and publishes — never the admin
 * command itself. Replaying a suffix of them over any state that already reflects an earlier prefix gives
 * the same result, which is what makes recovery after a crash in the middle of `saveConfig` converge.
 */
import { z } from 'zod';
import type { AppConfig, NodeConfig, ProjectConfig } from '../../core/cluster-model.js';
import { IbpError } from '../../core/errors.js';
import type { ClusterState } from './cluster-state.js';
import type { KeyState } from './types.js';

/** One effect of a journal record. */
export type StoreOp =
  | { op: 'put_node'; node: NodeConfig }
  | { op: 'del_node'; node: string }
  | { op: 'put_app'; app: AppConfig }
  | { op: 'del_app'; app: string }
  | { op: 'put_project'; project: ProjectConfig }
  | { op: 'del_project'; project: string }
  /** A node's key rotation state (null: none). */
  | { op: 'key'; node: string; key: KeyState | null }
  /** These nodes have changes not yet distributed. */
  | { op: 'pending'; nodes: string[] }
  /** These nodes' views were published at `version`, stored in view segment `segment`. */
  | { op: 'publish'; version: number; segment: string; nodes: string[] };

/** One line of the journal. */
export interface JournalRecord {
  seq: number;
  /** Epoch ms when it was written. */
  at: number;
  /** The admin action or store call that made it (for people reading the journal). */
  action: string;
  ops: StoreOp[];
}

/** Where a published view lives. */
export interface PublishedRef {
  version: number;
  segment: string;
}

/** The store's state besides the cluster: keys, pending set, publishes, the global version. */
export interface RunState {
  keys: Map<string, KeyState>;
  pending: Set<string>;
  published: Map<string, PublishedRef>;
  version: number;
}

/** Applies ops to the cluster and the run state; `touched` collects the cluster records changed ("n:", "a:", "p:"). */
export function applyOps(ops: readonly StoreOp[], state: ClusterState, run: RunState, touched?: Set<string>): void {
  for (const op of ops) {
    switch (op.op) {
      case 'put_node': state.putNode(op.node); touched?.add(`n:${op.node.node}`); break;
      case 'del_node':
        state.delNode(op.node);
        run.keys.delete(op.node);
        run.pending.delete(op.node);
        run.published.delete(op.node);
        touched?.add(`n:${op.node}`);
        break;
      case 'put_app': state.putApp(op.app); touched?.add(`a:${op.app.app}`); break;
      case 'del_app': state.delApp(op.app); touched?.add(`a:${op.app}`); break;
      case 'put_project': state.putProject(op.project); touched?.add(`p:${op.project.project}`); break;
      case 'del_project': state.delProject(op.project); touched?.add(`p:${op.project}`); break;
      case 'key':
        if (op.key === null) run.keys.delete(op.node);
        else run.keys.set(op.node, op.key);
        break;
      case 'pending': for (const n of op.nodes) run.pending.add(n); break;
      case 'publish':
        for (const n of op.nodes) {
          run.pending.delete(n);
          run.published.set(n, { version: op.version, segment: op.segment });
        }
        run.version = Math.max(run.version, op.version);
        break;
    }
  }
}

/** Freezes a record and what it holds (records are shared, never edited). */
export function freezeRecord<T extends object>(rec: T): T {
  if (Object.isFrozen(rec)) return rec; // frozen here means frozen all the way down
  for (const v of Object.values(rec)) {
    if (typeof v === 'object' && v !== null) freezeRecord(v as object);
  }
  return Object.freeze(rec);
}

const count = z.number().int().nonnegative();
// Not z.record: that rebuilds the object by assignment, which drops a key named "__proto__".
const kvSchema = z.custom<Record<string, string>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'),
  { message: 'an object of strings' },
);
const nodeSchema = z.object({
  node: z.string().min(1),
  invalid: z.boolean(),
  hosts: z.array(z.object({ ip: z.string(), port: count, clientOnly: z.boolean(), invalid: z.boolean() })),
  keyExp: z.string(),
  kv: kvSchema,
});
const appSchema = z.object({
  app: z.string().min(1), desc: z.string(), bin: z.string(), timeout: z.number(), timeout2: z.number(),
  serverNode: z.string(), invalid: z.boolean(),
});
const projectSchema = z.object({
  project: z.string().min(1), serverNodes: z.array(z.string()), clientNodes: z.array(z.string()), apps: z.array(z.string()),
});
const keySchema = z.object({ oldKeyExp: z.string(), newKeyEnableAt: count, oldKeyDisableAt: count });
const opSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('put_node'), node: nodeSchema }),
  z.object({ op: z.literal('del_node'), node: z.string() }),
  z.object({ op: z.literal('put_app'), app: appSchema }),
  z.object({ op: z.literal('del_app'), app: z.string() }),
  z.object({ op: z.literal('put_project'), project: projectSchema }),
  z.object({ op: z.literal('del_project'), project: z.string() }),
  z.object({ op: z.literal('key'), node: z.string(), key: keySchema.nullable() }),
  z.object({ op: z.literal('pending'), nodes: z.array(z.string()) }),
  z.object({ op: z.literal('publish'), version: count, segment: z.string().regex(/^[a-z]+-[0-9]+$/), nodes: z.array(z.string()) }),
]);
const recordSchema = z.object({ seq: z.number().int().positive(), at: count, action: z.string(), ops: z.array(opSchema) });

/** Checks the shape of a decoded record (or of checkpoint ops); throws IBP_ERR_REGISTRY_JOURNAL naming `where`. */
export function checkRecord(value: unknown, where: string): JournalRecord {
  const r = recordSchema.safeParse(value);
  if (!r.success) throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${where}: ${describeIssue(r.error)}`);
  const rec = r.data as JournalRecord;
  freezeOps(rec.ops);
  return rec;
}

/** Checks a list of ops (a checkpoint's unsaved records). */
export function checkOps(value: unknown, where: string): StoreOp[] {
  const r = z.array(opSchema).safeParse(value);
  if (!r.success) throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${where}: ${describeIssue(r.error)}`);
  return freezeOps(r.data as StoreOp[]);
}

/** Checks a key state read back. */
export function checkKeyState(value: unknown, where: string): KeyState {
  const r = keySchema.safeParse(value);
  if (!r.success) throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${where}: ${describeIssue(r.error)}`);
  return r.data;
}

function freezeOps(ops: StoreOp[]): StoreOp[] {
  for (const op of ops) {
    if (op.op === 'put_node') freezeRecord(op.node);
    else if (op.op === 'put_app') freezeRecord(op.app);
    else if (op.op === 'put_project') freezeRecord(op.project);
  }
  return ops;
}

function describeIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.length > 0 ? issue.path.join('.') : '(record)';
  return `${path}: ${issue.message}`;
}
