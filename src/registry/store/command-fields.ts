/**
 * Parsing the string fields of an admin command (the `ibms -a` flags) into typed values. Every failure is
 * IBP_ERR_REGISTRY_BAD_ARG naming the flag as the command line spells it (`--server-nodes`), the value and
 * what was expected. Cross-reference checks (unknown node, host in use …) come later, in change-plan.ts.
 */
import { IbpError } from '../../core/errors.js';
import { appCodeProblem, isHostText, nodeNameProblem } from '../../core/config/fields.js';
import { ADMIN_ACTIONS, type AdminAction, type AdminField } from './types.js';

/** Which fields each action takes: required ones, then optional ones. */
const ACTION_FIELDS: Record<AdminAction, { required: AdminField[]; optional: AdminField[] }> = {
  add_node: { required: ['node'], optional: ['invalid', 'key_exp'] },
  set_node: { required: ['node'], optional: ['invalid', 'key_exp'] },
  remove_node: { required: ['node'], optional: [] },
  add_node_host: { required: ['node', 'ip', 'port'], optional: [] },
  remove_node_host: { required: ['node', 'ip', 'port'], optional: [] },
  add_app: { required: ['app', 'bin', 'timeout'], optional: ['desc', 'timeout2', 'invalid', 'server_node'] },
  set_app: { required: ['app'], optional: ['desc', 'bin', 'timeout', 'timeout2', 'invalid', 'server_node'] },
  update_app: { required: ['app'], optional: [] },
  remove_app: { required: ['app'], optional: [] },
  add_project: { required: ['project'], optional: ['server_nodes', 'client_nodes', 'apps'] },
  set_project: { required: ['project'], optional: ['server_nodes', 'client_nodes', 'apps'] },
  remove_project: { required: ['project'], optional: [] },
  add_node_kv: { required: ['node', 'key', 'value'], optional: [] },
  set_node_kv: { required: ['node', 'key', 'value'], optional: [] },
  remove_node_kv: { required: ['node', 'key'], optional: ['value'] },
};

const ALL_FIELDS = new Set<string>([
  'node', 'invalid', 'key_exp', 'ip', 'port', 'app', 'desc', 'bin', 'timeout', 'timeout2', 'server_node',
  'project', 'server_nodes', 'client_nodes', 'apps', 'key', 'value',
]);

/** How a field reads on the command line: `server_nodes` → `--server-nodes`. */
export function flagName(field: string): string {
  return `--${field.replace(/_/g, '-')}`;
}

/** A BAD_ARG error about one field. */
export function badArg(action: string, field: string, message: string, value?: string): IbpError {
  const shown = value === undefined ? '' : ` (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)})`;
  return new IbpError('IBP_ERR_REGISTRY_BAD_ARG', `${action} ${flagName(field)}: ${message}${shown}`, { details: { action, field } });
}

/** The fields of a command, checked against its action: strings only, no unknown or foreign field, required present. */
export type CheckedCommand = { action: AdminAction } & Partial<Record<AdminField, string>>;

/**
 * Checks the shape of a command: a known action, string values, only the fields that action takes, and
 * all of its required ones. `undefined` values count as absent.
 */
export function checkCommandShape(cmd: unknown): CheckedCommand {
  if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd)) {
    throw new IbpError('IBP_ERR_REGISTRY_BAD_ARG', 'an admin command must be an object { action, ...fields }', { details: { field: 'action' } });
  }
  const raw = cmd as Record<string, unknown>;
  const action = raw.action;
  if (typeof action !== 'string' || !(ADMIN_ACTIONS as readonly string[]).includes(action)) {
    throw new IbpError('IBP_ERR_REGISTRY_BAD_ARG', `unknown admin action ${JSON.stringify(action)}: expected one of ${ADMIN_ACTIONS.join(', ')}`, { details: { field: 'action' } });
  }
  const act = action as AdminAction;
  const spec = ACTION_FIELDS[act];
  const out: CheckedCommand = { action: act };
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'action' || v === undefined) continue;
    if (!ALL_FIELDS.has(k)) throw badArg(act, k, 'unknown argument');
    const field = k as AdminField;
    if (!spec.required.includes(field) && !spec.optional.includes(field)) {
      throw badArg(act, k, `not an argument of ${act} (it takes ${[...spec.required, ...spec.optional].map(flagName).join(' ')})`);
    }
    if (typeof v !== 'string') throw badArg(act, k, 'expected a string');
    out[field] = v;
  }
  for (const f of spec.required) {
    if (out[f] === undefined) throw badArg(act, f, 'missing (required)');
  }
  return out;
}

/** A node name (1-32 characters, no spaces or commas). */
export function parseNodeName(action: string, field: AdminField, v: string): string {
  const problem = nodeNameProblem(v);
  if (problem !== undefined) throw badArg(action, field, problem.replace(/^expected/, 'expected a node name:'), v);
  return v;
}

/** An app code (1-32 characters, no spaces). */
export function parseAppCode(action: string, field: AdminField, v: string): string {
  const problem = appCodeProblem(v);
  if (problem !== undefined) throw badArg(action, field, problem.replace(/^expected/, 'expected an app code:'), v);
  return v;
}

/** A 0/1 flag (also true/false). */
export function parseFlag(action: string, field: AdminField, v: string): boolean {
  const t = v.trim().toLowerCase();
  if (t === '1' || t === 'true') return true;
  if (t === '0' || t === 'false') return false;
  throw badArg(action, field, 'expected 0 or 1', v);
}

const NUM_RE = /^\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*$/;

/**
 * A number of seconds. Syntax only: the range (timeout > 0, timeout2 >= 0) is a cluster rule checked with
 * the others (IBP_ERR_REGISTRY_INVALID).
 */
export function parseSeconds(action: string, field: AdminField, v: string): number {
  if (!NUM_RE.test(v)) throw badArg(action, field, 'expected a number of seconds', v);
  const n = Number(v.trim());
  if (!Number.isFinite(n)) throw badArg(action, field, 'expected a finite number of seconds', v);
  return n;
}

/** A host address: an IP address or a host name. */
export function parseIp(action: string, field: AdminField, v: string): string {
  if (!isHostText(v)) throw badArg(action, field, 'expected an IP address or host name', v);
  return v;
}

/** A port: 1-65535, or -65535..-1 for a client-only host. */
export function parsePort(action: string, field: AdminField, v: string): { port: number; clientOnly: boolean } {
  const n = /^\s*[+-]?[0-9]{1,6}\s*$/.test(v) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n === 0 || Math.abs(n) > 65535) {
    throw badArg(action, field, 'expected a port from 1 to 65535, or from -65535 to -1 for a client-only host', v);
  }
  return { port: Math.abs(n), clientOnly: n < 0 };
}

/** Free text of at most `max` characters (desc, key_exp, KV values): no NUL or line breaks. */
export function parseText(action: string, field: AdminField, v: string, max: number): string {
  if (v.length > max) throw badArg(action, field, `expected at most ${max} characters, got ${v.length}`);
  if (/[\0\r\n]/.test(v)) throw badArg(action, field, 'expected text without NUL or line breaks', v);
  return v;
}

/** A package file name in so/: a plain file name (no directory, not `.` or `..`), 1-256 characters. */
export function parseBin(action: string, field: AdminField, v: string): string {
  if (v.length < 1 || v.length > 256 || /[/\\\0]/.test(v) || v === '.' || v === '..' || v.trim() !== v) {
    throw badArg(action, field, 'expected a file name in so/ (1-256 characters, no directory part)', v);
  }
  return v;
}

/** A project name: 1-64 characters without spaces. */
export function parseProjectName(action: string, field: AdminField, v: string): string {
  if (v.length < 1 || v.length > 64 || /\s/.test(v)) throw badArg(action, field, 'expected a project name of 1-64 characters without spaces', v);
  return v;
}

/** A KV key: 1-256 characters without spaces. */
export function parseKvKey(action: string, field: AdminField, v: string): string {
  if (v.length < 1 || v.length > 256 || /\s/.test(v)) throw badArg(action, field, 'expected a key of 1-256 characters without spaces', v);
  return v;
}

/** A list of node names separated by spaces or commas ('' = empty); each name once. */
export function parseNodeList(action: string, field: AdminField, v: string): string[] {
  const names = v.split(/[\s,]+/).filter((s) => s.length > 0);
  return uniqueList(action, field, names.map((n) => parseNodeName(action, field, n)), 'node');
}

/** A list of app codes separated by spaces ('' = empty); each code once. */
export function parseAppList(action: string, field: AdminField, v: string): string[] {
  const codes = v.split(/\s+/).filter((s) => s.length > 0);
  return uniqueList(action, field, codes.map((c) => parseAppCode(action, field, c)), 'app');
}

function uniqueList(action: string, field: AdminField, list: string[], what: string): string[] {
  const seen = new Set<string>();
  for (const x of list) {
    if (seen.has(x)) throw badArg(action, field, `lists ${what} ${JSON.stringify(x)} twice`);
    seen.add(x);
  }
  return list;
}
