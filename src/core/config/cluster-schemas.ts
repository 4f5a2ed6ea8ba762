/**
 * Schemas of the three cluster files (`ibp_nodes.conf`, `ibp_apps.conf`, `ibp_projects.conf`) and their
 * conversion to the {@link ClusterConfig} model. Cross-references are checked afterwards, by
 * `validateClusterConfig`, because the registry builds and edits the model without files.
 */
import { z } from 'zod';
import type { AppConfig, HostConfig, NodeConfig, ProjectConfig } from '../cluster-model.js';
import {
  APP_CODE, field, flagField, hostField, NODE_NAME, numberField, textField, type IssueKind,
} from './fields.js';

const hostSchema = z.strictObject({
  ip: hostField(),
  // a negative port registers a client-only host (the original's `--port -18001`)
  port: field<number>('an integer from 1 to 65535, or from -65535 to -1 for a client-only host', (v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[+-]?[0-9]+\s*$/.test(v) ? Number(v) : NaN;
    return Number.isInteger(n) && n !== 0 && Math.abs(n) <= 65535 ? { ok: true, value: n } : { ok: false };
  }),
  invalid: flagField().default(false),
}).transform((h): HostConfig => ({ ip: h.ip, port: Math.abs(h.port), clientOnly: h.port < 0, invalid: h.invalid }));

const KV_KEY_RE = /^\S+$/;

function kvValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * A node's KV config: either `{ "key": "value", ... }` or `[ { "key": "k", "value": "v" }, ... ]`.
 * Values are strings (numbers and booleans are taken as their text).
 */
const kvSchema = z.unknown().transform((v, ctx): Record<string, string> => {
  const out: Record<string, string> = {};
  const invalid = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message, params: { kind: 'invalid' satisfies IssueKind } });
  const put = (key: string, value: string, keyPath: (string | number)[]) => {
    if (Object.prototype.hasOwnProperty.call(out, key)) invalid(keyPath, `a key not used before in this node's kv (${JSON.stringify(key)} repeats)`);
    else Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  };
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) return invalid([i], 'an object { "key": ..., "value": ... }');
      const rec = item as Record<string, unknown>;
      for (const k of Object.keys(rec)) {
        if (k !== 'key' && k !== 'value') ctx.addIssue({ code: 'custom', path: [i, k], message: 'key or value', params: { kind: 'unknown_key' satisfies IssueKind } });
      }
      const key = rec.key;
      const value = kvValue(rec.value);
      if (typeof key !== 'string' || !KV_KEY_RE.test(key)) return invalid([i, 'key'], 'a non-empty string without spaces');
      if (value === undefined) return invalid([i, 'value'], 'a string');
      put(key, value, [i, 'key']);
    });
    return out;
  }
  if (typeof v === 'object' && v !== null) {
    for (const [key, raw] of Object.entries(v)) {
      const value = kvValue(raw);
      if (!KV_KEY_RE.test(key)) invalid([key], 'a key without spaces');
      else if (value === undefined) invalid([key], 'a string');
      else put(key, value, [key]);
    }
    return out;
  }
  invalid([], 'an object of strings, or an array of { "key": ..., "value": ... }');
  return z.NEVER;
});

const nodeSchema = z.strictObject({
  node: textField(NODE_NAME),
  invalid: flagField().default(false),
  hosts: z.array(hostSchema).default([]),
  key_exp: textField({ maxLength: 4096 }).default(''),
  kv: kvSchema.default({}),
}).transform((n): NodeConfig => ({ node: n.node, invalid: n.invalid, hosts: n.hosts, keyExp: n.key_exp, kv: n.kv }));

/** Schema of `ibp_nodes.conf`: `{ "nodes": [ ... ] }`. */
export const nodesConfSchema = z.strictObject({ nodes: z.array(nodeSchema).default([]) });

const appSchema = z.strictObject({
  app: textField(APP_CODE),
  desc: textField({ maxLength: 256 }).default(''),
  bin: textField({ minLength: 1, maxLength: 256 }),
  timeout: numberField(),
  timeout2: numberField().default(0),
  server_node: textField({ maxLength: 32 }).default(''),
  invalid: flagField().default(false),
}).transform((a): AppConfig => ({
  app: a.app, desc: a.desc, bin: a.bin, timeout: a.timeout, timeout2: a.timeout2, serverNode: a.server_node, invalid: a.invalid,
}));

/** Schema of `ibp_apps.conf`: `{ "apps": [ ... ] }`. */
export const appsConfSchema = z.strictObject({ apps: z.array(appSchema).default([]) });

/** Splits a list written as one string; '' is the empty list. */
export function splitConfigList(s: string, separators: RegExp): string[] {
  return s.split(separators).filter((x) => x.length > 0);
}

const listField = (separators: RegExp, what: string) =>
  field<string[]>(`a string of ${what}`, (v) => (typeof v === 'string' ? { ok: true, value: splitConfigList(v, separators) } : { ok: false }));

const projectSchema = z.strictObject({
  project: textField({ minLength: 1, maxLength: 64 }),
  server_nodes: listField(/[\s,]+/, 'node names separated by spaces or commas').default([]),
  client_nodes: listField(/[\s,]+/, 'node names separated by spaces or commas').default([]),
  apps: listField(/\s+/, 'app codes separated by spaces').default([]),
}).transform((p): ProjectConfig => ({ project: p.project, serverNodes: p.server_nodes, clientNodes: p.client_nodes, apps: p.apps }));

/** Schema of `ibp_projects.conf`: `{ "projects": [ ... ] }`. */
export const projectsConfSchema = z.strictObject({ projects: z.array(projectSchema).default([]) });
