/**
 * The admin half of the `ibms` command line: `-s` shows and `-a` cluster actions, sent to the running
 * registry over HTTP with the admin token, printed as aligned tables and one-line results.
 */
import { IbpError } from '../core/errors.js';
import { ADMIN_ACTIONS, type AdminActionName, type AdminCommandBody, type RegistryClient, type SessionRow } from '../registry/index.js';
import { formatTable } from './args.js';

/** `-s` names, with the walkthrough's other spellings of nodes_changed. */
export const SHOW_ALIASES: Readonly<Record<string, string>> = {
  nodes: 'nodes', apps: 'apps', projects: 'projects', nodes_kv: 'nodes_kv', sessions: 'sessions',
  nodes_changed: 'nodes_changed', changed_nodes: 'nodes_changed', cnodes_changed: 'nodes_changed',
};

/** Command-line flags of the admin actions (as typed, without "--"). */
export const ADMIN_FLAGS = [
  'node', 'invalid', 'key-exp', 'ip', 'port', 'app', 'desc', 'bin', 'timeout', 'timeout2', 'server-node',
  'project', 'server-nodes', 'client-nodes', 'apps', 'key', 'value',
] as const;
export type AdminFlag = (typeof ADMIN_FLAGS)[number];

/** Per action: [required flags, optional flags]. */
const ACTION_FLAGS: Record<AdminActionName | 'download_config', [AdminFlag[], AdminFlag[]]> = {
  add_node: [['node'], ['invalid', 'key-exp']],
  set_node: [['node'], ['invalid', 'key-exp']],
  remove_node: [['node'], []],
  add_node_host: [['node', 'ip', 'port'], []],
  remove_node_host: [['node', 'ip', 'port'], []],
  add_app: [['app'], ['desc', 'bin', 'timeout', 'timeout2', 'invalid', 'server-node']],
  set_app: [['app'], ['desc', 'bin', 'timeout', 'timeout2', 'invalid', 'server-node']],
  update_app: [['app'], []],
  remove_app: [['app'], []],
  add_project: [['project'], ['server-nodes', 'client-nodes', 'apps']],
  set_project: [['project'], ['server-nodes', 'client-nodes', 'apps']],
  remove_project: [['project'], []],
  add_node_kv: [['node', 'key', 'value'], []],
  set_node_kv: [['node', 'key', 'value'], []],
  remove_node_kv: [['node', 'key'], ['value']],
  download_config: [['node'], []],
};

/** Actions that take no flag. */
const PLAIN_ACTIONS: Readonly<Record<string, string>> = {
  save_config: 'save_config', build_config: 'build_config', distribute_config: 'distribute_config', commit_config: 'distribute_config',
};

/** True when `-a name` is an admin action (sent to the daemon). */
export function isAdminAction(name: string): boolean {
  return name in ACTION_FLAGS || name in PLAIN_ACTIONS;
}

/** Checks the flags of an action: missing required ones and ones it does not take are usage errors. */
export function checkActionFlags(action: string, given: Partial<Record<AdminFlag, string>>, usage: string): void {
  const [required, optional] = ACTION_FLAGS[action as keyof typeof ACTION_FLAGS] ?? [[], []];
  const missing = required.filter((f) => given[f] === undefined);
  if (missing.length > 0) throw new IbpError('IBP_ERR_USAGE', `-a ${action} needs ${missing.map((f) => `--${f}`).join(' ')}\n\n${usage}`);
  const allowed = new Set<string>([...required, ...optional]);
  const extra = ADMIN_FLAGS.filter((f) => given[f] !== undefined && !allowed.has(f));
  if (extra.length > 0) {
    throw new IbpError('IBP_ERR_USAGE', `-a ${action} does not take ${extra.map((f) => `--${f}`).join(' ')}${allowed.size ? ` (it takes ${[...allowed].map((f) => `--${f}`).join(' ')})` : ''}\n\n${usage}`);
  }
}

/** Runs `-a <action>` against the daemon and prints the outcome. */
export async function runAdminAction(client: RegistryClient, action: string, given: Partial<Record<AdminFlag, string>>, out: (s: string) => void): Promise<number> {
  const plain = PLAIN_ACTIONS[action];
  if (plain === 'save_config' || plain === 'build_config') {
    const r = await client.admin<{ files: string[]; secondDump?: SecondDumpReplyText }>('POST', plain, {});
    out(`${plain === 'save_config' ? 'saved' : 'built'} ${r.files.length} files:\n${r.files.map((f) => `  ${f}`).join('\n')}`);
    if (r.secondDump) out(secondDumpLine(r.secondDump));
    return 0;
  }
  if (plain === 'distribute_config') {
    const r = await client.admin<{ nodes: string[]; version: number }>('POST', 'distribute_config', {});
    out(r.nodes.length === 0 ? 'nothing to distribute: no pending changes' : `distributed version ${r.version} to ${r.nodes.length} node(s): ${r.nodes.join(' ')}`);
    return 0;
  }
  if (action === 'download_config') {
    const r = await client.admin<{ version: number }>('POST', 'download_config', { node: given.node });
    out(`pushed the full view of node ${given.node} (version ${r.version})`);
    return 0;
  }
  if (!(ADMIN_ACTIONS as readonly string[]).includes(action)) throw new IbpError('IBP_ERR_USAGE', `unknown action -a ${action}`);
  const cmd: AdminCommandBody = { action: action as AdminActionName };
  for (const f of ADMIN_FLAGS) {
    const v = given[f];
    if (v !== undefined) cmd[f.replace(/-/g, '_') as Exclude<keyof AdminCommandBody, 'action'>] = v;
  }
  const r = await client.admin<{ changedNodes: string[]; seq: number }>('POST', 'apply', cmd);
  const nodes = r.changedNodes.length ? `; nodes changed: ${r.changedNodes.join(' ')} (run ibms -a distribute_config to push)` : '; no node affected';
  out(`ok: ${action} (journal #${r.seq})${nodes}`);
  return 0;
}

/** Runs `-s <show>` against the daemon and prints an aligned table (or JSON). */
export async function runShow(client: RegistryClient, show: string, json: boolean, out: (s: string) => void): Promise<number> {
  const { rows } = await client.admin<{ rows: Record<string, unknown>[] }>('GET', show);
  if (json) {
    out(JSON.stringify(rows, null, 2));
    return 0;
  }
  out(formatRows(show, rows));
  return 0;
}

/** The table a show prints. */
export function formatRows(show: string, rows: Record<string, unknown>[]): string {
  const t = (header: string[], body: (string | number)[][], none: string): string => (body.length === 0 ? none : formatTable(header, body));
  switch (show) {
    case 'nodes':
      return t(['node', 'invalid', 'key', 'kv', 'hosts'], rows.map((r) => [
        str(r.node), flag(r.invalid), r.keyExp ? 'set' : '-', Number(r.kvCount ?? 0),
        (r.hosts as { ip: string; port: number; clientOnly: boolean; invalid: boolean }[]).map((h) => `${h.ip}:${h.clientOnly ? -h.port : h.port}${h.invalid ? '(invalid)' : ''}`).join(' ') || '-',
      ]), 'no nodes');
    case 'apps':
      return t(['app', 'bin', 'timeout', 'timeout2', 'server_node', 'invalid', 'package', 'desc'], rows.map((r) => [
        str(r.app), str(r.bin), Number(r.timeout), Number(r.timeout2), str(r.serverNode) || '-', flag(r.invalid),
        r.packageSize === null || r.packageSize === undefined ? 'missing' : `${r.packageSize} B`, str(r.desc),
      ]), 'no apps');
    case 'projects':
      return t(['project', 'server_nodes', 'client_nodes', 'apps'], rows.map((r) => [
        str(r.project), list(r.serverNodes), list(r.clientNodes), list(r.apps),
      ]), 'no projects');
    case 'nodes_kv':
      return t(['node', 'key', 'value'], rows.map((r) => [str(r.node), str(r.key), str(r.value)]), 'no node KV');
    case 'nodes_changed':
      return t(['node'], rows.map((r) => [str(r.node)]), 'no pending changes');
    case 'sessions':
      return t(['role', 'node', 'host', 'pid', 'since', 'last_seen', 'view', 'load'], (rows as unknown as SessionRow[]).map((r) => [
        r.role, r.node, r.host, r.pid || '-', time(r.sinceMs), time(r.lastSeenMs), r.viewVersion ?? '-', r.load ? `${r.load.busy}/${r.load.total}` : '-',
      ]), 'no sessions');
    default:
      return JSON.stringify(rows, null, 2);
  }
}

/** The `secondDump` member of a save_config reply (src/registry/second-dump.ts). */
interface SecondDumpReplyText {
  address: string;
  state: string;
  last?: { state: string; finishedAtMs: number; attempts: number; error?: { code: string; message: string } };
}

/** One line about the second config dump a save started, and how the previous one went. */
function secondDumpLine(d: SecondDumpReplyText): string {
  const last = d.last;
  const prev = last === undefined ? '' : last.state === 'ok'
    ? `; previous copy ok at ${time(last.finishedAtMs)}`
    : `; previous copy FAILED at ${time(last.finishedAtMs)} after ${last.attempts} attempt(s): ${last.error?.code ?? ''} ${last.error?.message ?? ''}`;
  return `second config dump to ${d.address}: ${d.state} (outcome in the event log)${prev}`;
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const flag = (v: unknown): string => (v ? '1' : '0');
const list = (v: unknown): string => (Array.isArray(v) && v.length > 0 ? v.join(' ') : '-');
const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
