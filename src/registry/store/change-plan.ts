/**
 * From an admin command to the change it makes: the resulting records (journal ops) and the nodes whose
 * view it touches. Everything is checked here, before anything is written: argument syntax (BAD_ARG),
 * existence (NOT_FOUND / EXISTS) and the cluster rules validateClusterConfig enforces (INVALID), the latter
 * only for what the command touches — the cluster was valid before, so that keeps it valid.
 */
import type { AppConfig, NodeConfig, ProjectConfig } from '../../core/cluster-model.js';
import { IbpError } from '../../core/errors.js';
import type { ClusterState } from './cluster-state.js';
import { hostAddress } from './cluster-state.js';
import {
  badArg, checkCommandShape, parseAppCode, parseAppList, parseBin, parseFlag, parseIp, parseKvKey, parseNodeList,
  parseNodeName, parsePort, parseProjectName, parseSeconds, parseText, type CheckedCommand,
} from './command-fields.js';
import { freezeRecord, type StoreOp } from './store-ops.js';
import type { KeyState } from './types.js';

/** What a plan needs besides the cluster. */
export interface PlanContext {
  state: ClusterState;
  nowMs: number;
  /** ibms.security.new_key_enable_elapse / old_key_disable_elapse, seconds. */
  newKeyEnableElapseSec: number;
  oldKeyDisableElapseSec: number;
}

/** The change a command makes. */
export interface ChangePlan {
  ops: StoreOp[];
  /** Nodes whose view changes (sorted; may include nodes the change removes). */
  changedNodes: string[];
}

const q = JSON.stringify;
const notFound = (what: string) => new IbpError('IBP_ERR_REGISTRY_NOT_FOUND', what);
const exists = (what: string) => new IbpError('IBP_ERR_REGISTRY_EXISTS', what);
const invalid = (what: string) => new IbpError('IBP_ERR_REGISTRY_INVALID', what);

/**
 * Checks a command against the cluster and returns its change.
 * @throws IbpError IBP_ERR_REGISTRY_BAD_ARG / _NOT_FOUND / _EXISTS / _INVALID; nothing is changed.
 */
export function planChange(command: unknown, ctx: PlanContext): ChangePlan {
  const cmd = checkCommandShape(command);
  const changed = new Set<string>();
  const ops = PLANNERS[cmd.action](cmd, ctx, changed);
  return { ops, changedNodes: [...changed].sort() };
}

type Planner = (cmd: CheckedCommand, ctx: PlanContext, changed: Set<string>) => StoreOp[];

function needNode(s: ClusterState, cmd: CheckedCommand): NodeConfig {
  const name = parseNodeName(cmd.action, 'node', cmd.node ?? '');
  const n = s.getNode(name);
  if (!n) throw notFound(`${cmd.action}: node ${q(name)} is not defined`);
  return n;
}

function needApp(s: ClusterState, cmd: CheckedCommand): AppConfig {
  const code = parseAppCode(cmd.action, 'app', cmd.app ?? '');
  const a = s.getApp(code);
  if (!a) throw notFound(`${cmd.action}: app ${q(code)} is not defined`);
  return a;
}

function needProject(s: ClusterState, cmd: CheckedCommand): ProjectConfig {
  const name = parseProjectName(cmd.action, 'project', cmd.project ?? '');
  const p = s.getProject(name);
  if (!p) throw notFound(`${cmd.action}: project ${q(name)} is not defined`);
  return p;
}

/** The node and every client node of a project where it is a server node (who sees its hosts, key, flag). */
function nodeAndItsClients(s: ClusterState, node: string, into: Set<string>): void {
  into.add(node);
  for (const p of s.serverProjectsOf(node)) for (const c of s.getProject(p)?.clientNodes ?? []) into.add(c);
}

/** Every server and client node of the projects listing an app. */
function nodesSeeingApp(s: ClusterState, app: string, into: Set<string>): void {
  for (const p of s.projectsOfApp(app)) addProjectNodes(s.getProject(p), into);
}

function addProjectNodes(p: ProjectConfig | undefined, into: Set<string>): void {
  if (!p) return;
  for (const n of p.serverNodes) into.add(n);
  for (const n of p.clientNodes) into.add(n);
}

function putNode(rec: NodeConfig): StoreOp {
  return { op: 'put_node', node: freezeRecord(rec) };
}

function withKv(kv: Record<string, string>, key: string, value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(kv)) {
    if (k !== key) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  // defineProperty, not assignment: a key named "__proto__" must stay a key
  if (value !== undefined) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

const hasKey = (kv: Record<string, string>, k: string) => Object.prototype.hasOwnProperty.call(kv, k);

/** Checks the app rules of validateClusterConfig for one app. */
function checkApp(s: ClusterState, a: AppConfig): void {
  if (!(a.timeout > 0)) throw invalid(`app ${q(a.app)}: timeout must be > 0 seconds, got ${a.timeout}`);
  if (!(a.timeout2 >= 0)) throw invalid(`app ${q(a.app)}: timeout2 must be >= 0 seconds (0 = timeout x 1.5), got ${a.timeout2}`);
  if (a.serverNode !== '' && !s.getNode(a.serverNode)) throw invalid(`app ${q(a.app)}: server_node names unknown node ${q(a.serverNode)}`);
}

/** Checks the project rules of validateClusterConfig for one project. */
function checkProject(s: ClusterState, p: ProjectConfig): void {
  for (const [list, key] of [[p.serverNodes, 'server_nodes'], [p.clientNodes, 'client_nodes']] as const) {
    for (const n of list) if (!s.getNode(n)) throw invalid(`project ${q(p.project)}: ${key} names unknown node ${q(n)}`);
  }
  for (const a of p.apps) if (!s.getApp(a)) throw invalid(`project ${q(p.project)}: apps names unknown app ${q(a)}`);
}

function appFields(cmd: CheckedCommand, base: AppConfig): AppConfig {
  const a = cmd.action;
  return {
    app: base.app,
    desc: cmd.desc !== undefined ? parseText(a, 'desc', cmd.desc, 256) : base.desc,
    bin: cmd.bin !== undefined ? parseBin(a, 'bin', cmd.bin) : base.bin,
    timeout: cmd.timeout !== undefined ? parseSeconds(a, 'timeout', cmd.timeout) : base.timeout,
    timeout2: cmd.timeout2 !== undefined ? parseSeconds(a, 'timeout2', cmd.timeout2) : base.timeout2,
    serverNode: cmd.server_node === undefined ? base.serverNode : cmd.server_node === '' ? '' : parseNodeName(a, 'server_node', cmd.server_node),
    invalid: cmd.invalid !== undefined ? parseFlag(a, 'invalid', cmd.invalid) : base.invalid,
  };
}

function projectFields(cmd: CheckedCommand, base: ProjectConfig): ProjectConfig {
  const a = cmd.action;
  return {
    project: base.project,
    serverNodes: cmd.server_nodes !== undefined ? parseNodeList(a, 'server_nodes', cmd.server_nodes) : base.serverNodes,
    clientNodes: cmd.client_nodes !== undefined ? parseNodeList(a, 'client_nodes', cmd.client_nodes) : base.clientNodes,
    apps: cmd.apps !== undefined ? parseAppList(a, 'apps', cmd.apps) : base.apps,
  };
}

const sameJson = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);

const PLANNERS: Record<CheckedCommand['action'], Planner> = {
  add_node(cmd, { state }, changed) {
    const name = parseNodeName(cmd.action, 'node', cmd.node ?? '');
    if (state.getNode(name)) throw exists(`add_node: node ${q(name)} already exists (use set_node to change it)`);
    const rec: NodeConfig = {
      node: name,
      invalid: cmd.invalid !== undefined ? parseFlag(cmd.action, 'invalid', cmd.invalid) : false,
      hosts: [],
      keyExp: cmd.key_exp !== undefined ? parseText(cmd.action, 'key_exp', cmd.key_exp, 4096) : '',
      kv: {},
    };
    changed.add(name);
    return [putNode(rec)];
  },

  set_node(cmd, ctx, changed) {
    const old = needNode(ctx.state, cmd);
    if (cmd.invalid === undefined && cmd.key_exp === undefined) throw badArg(cmd.action, 'invalid', 'set_node needs --invalid or --key-exp (or both)');
    const rec: NodeConfig = {
      ...old,
      invalid: cmd.invalid !== undefined ? parseFlag(cmd.action, 'invalid', cmd.invalid) : old.invalid,
      keyExp: cmd.key_exp !== undefined ? parseText(cmd.action, 'key_exp', cmd.key_exp, 4096) : old.keyExp,
    };
    const ops: StoreOp[] = [putNode(rec)];
    if (rec.keyExp !== old.keyExp) {
      const nowSec = ctx.nowMs / 1000;
      const key: KeyState = {
        oldKeyExp: old.keyExp,
        newKeyEnableAt: Math.ceil(nowSec + ctx.newKeyEnableElapseSec),
        oldKeyDisableAt: Math.ceil(nowSec + ctx.oldKeyDisableElapseSec),
      };
      ops.push({ op: 'key', node: old.node, key: freezeRecord(key) });
    }
    if (rec.keyExp !== old.keyExp || rec.invalid !== old.invalid) nodeAndItsClients(ctx.state, old.node, changed);
    return ops;
  },

  remove_node(cmd, { state }) {
    const old = needNode(state, cmd);
    const users = [...state.serverProjectsOf(old.node)].map((p) => `${q(p)} (server_nodes)`)
      .concat([...state.clientProjectsOf(old.node)].map((p) => `${q(p)} (client_nodes)`));
    if (users.length > 0) throw invalid(`remove_node: node ${q(old.node)} is still used by project ${users.slice(0, 5).join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}; remove it there first`);
    const apps = state.appsWithServerNode(old.node);
    if (apps.length > 0) throw invalid(`remove_node: node ${q(old.node)} is the server_node of app ${apps.slice(0, 5).map((a) => q(a)).join(', ')}${apps.length > 5 ? ` and ${apps.length - 5} more` : ''}; change those apps first`);
    return [{ op: 'del_node', node: old.node }];
  },

  add_node_host(cmd, { state }, changed) {
    const old = needNode(state, cmd);
    const ip = parseIp(cmd.action, 'ip', cmd.ip ?? '');
    const { port, clientOnly } = parsePort(cmd.action, 'port', cmd.port ?? '');
    const addr = hostAddress({ ip, port });
    if (old.hosts.some((h) => hostAddress(h) === addr)) throw exists(`add_node_host: node ${q(old.node)} already has host ${addr}`);
    const owner = state.hostOwner(addr);
    if (owner !== undefined) throw invalid(`add_node_host: duplicate host ${addr}: already a host of node ${q(owner)}`);
    nodeAndItsClients(state, old.node, changed);
    return [putNode({ ...old, hosts: [...old.hosts, { ip, port, clientOnly, invalid: false }] })];
  },

  remove_node_host(cmd, { state }, changed) {
    const old = needNode(state, cmd);
    const ip = parseIp(cmd.action, 'ip', cmd.ip ?? '');
    const { port } = parsePort(cmd.action, 'port', cmd.port ?? '');
    const addr = hostAddress({ ip, port });
    const hosts = old.hosts.filter((h) => hostAddress(h) !== addr);
    if (hosts.length === old.hosts.length) throw notFound(`remove_node_host: node ${q(old.node)} has no host ${addr}`);
    nodeAndItsClients(state, old.node, changed);
    return [putNode({ ...old, hosts })];
  },

  add_app(cmd, { state }, changed) {
    const code = parseAppCode(cmd.action, 'app', cmd.app ?? '');
    if (state.getApp(code)) throw exists(`add_app: app ${q(code)} already exists (use set_app to change it)`);
    const rec = appFields(cmd, { app: code, desc: '', bin: '', timeout: 0, timeout2: 0, serverNode: '', invalid: false });
    checkApp(state, rec);
    nodesSeeingApp(state, code, changed);
    return [{ op: 'put_app', app: freezeRecord(rec) }];
  },

  set_app(cmd, { state }, changed) {
    const old = needApp(state, cmd);
    if (['desc', 'bin', 'timeout', 'timeout2', 'invalid', 'server_node'].every((f) => cmd[f as keyof CheckedCommand] === undefined)) {
      throw badArg(cmd.action, 'app', 'set_app needs at least one of --desc --bin --timeout --timeout2 --invalid --server-node');
    }
    const rec = appFields(cmd, old);
    checkApp(state, rec);
    if (!sameJson(rec, old)) nodesSeeingApp(state, old.app, changed);
    return [{ op: 'put_app', app: freezeRecord(rec) }];
  },

  update_app(cmd, { state }, changed) {
    const old = needApp(state, cmd);
    for (const n of state.servingNodes(old.app)) changed.add(n);
    return [];
  },

  remove_app(cmd, { state }) {
    const old = needApp(state, cmd);
    const users = state.projectsOfApp(old.app);
    if (users.length > 0) throw invalid(`remove_app: app ${q(old.app)} is still listed by project ${users.slice(0, 5).map((p) => q(p)).join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}; remove it there first`);
    return [{ op: 'del_app', app: old.app }];
  },

  add_project(cmd, { state }, changed) {
    const name = parseProjectName(cmd.action, 'project', cmd.project ?? '');
    if (state.getProject(name)) throw exists(`add_project: project ${q(name)} already exists (use set_project to change it)`);
    const rec = projectFields(cmd, { project: name, serverNodes: [], clientNodes: [], apps: [] });
    checkProject(state, rec);
    addProjectNodes(rec, changed);
    return [{ op: 'put_project', project: freezeRecord(rec) }];
  },

  set_project(cmd, { state }, changed) {
    const old = needProject(state, cmd);
    if (cmd.server_nodes === undefined && cmd.client_nodes === undefined && cmd.apps === undefined) {
      throw badArg(cmd.action, 'project', 'set_project needs at least one of --server-nodes --client-nodes --apps');
    }
    const rec = projectFields(cmd, old);
    checkProject(state, rec);
    if (!sameJson(rec, old)) {
      addProjectNodes(old, changed);
      addProjectNodes(rec, changed);
    }
    return [{ op: 'put_project', project: freezeRecord(rec) }];
  },

  remove_project(cmd, { state }, changed) {
    const old = needProject(state, cmd);
    addProjectNodes(old, changed);
    return [{ op: 'del_project', project: old.project }];
  },

  add_node_kv(cmd, { state }, changed) {
    const old = needNode(state, cmd);
    const key = parseKvKey(cmd.action, 'key', cmd.key ?? '');
    const value = parseText(cmd.action, 'value', cmd.value ?? '', 4096);
    if (hasKey(old.kv, key)) throw exists(`add_node_kv: node ${q(old.node)} already has kv ${q(key)} (use set_node_kv to change it)`);
    changed.add(old.node);
    return [putNode({ ...old, kv: withKv(old.kv, key, value) })];
  },

  set_node_kv(cmd, { state }, changed) {
    const old = needNode(state, cmd);
    const key = parseKvKey(cmd.action, 'key', cmd.key ?? '');
    const value = parseText(cmd.action, 'value', cmd.value ?? '', 4096);
    if (!hasKey(old.kv, key)) throw notFound(`set_node_kv: node ${q(old.node)} has no kv ${q(key)} (use add_node_kv to add it)`);
    if (old.kv[key] !== value) changed.add(old.node);
    return [putNode({ ...old, kv: withKv(old.kv, key, value) })];
  },

  remove_node_kv(cmd, { state }, changed) {
    const old = needNode(state, cmd);
    const key = parseKvKey(cmd.action, 'key', cmd.key ?? '');
    if (!hasKey(old.kv, key)) throw notFound(`remove_node_kv: node ${q(old.node)} has no kv ${q(key)}`);
    if (cmd.value !== undefined && old.kv[key] !== cmd.value) {
      throw notFound(`remove_node_kv: node ${q(old.node)} kv ${q(key)} is ${q(old.kv[key])}, not ${q(cmd.value)}`);
    }
    changed.add(old.node);
    return [putNode({ ...old, kv: withKv(old.kv, key, undefined) })];
  },
};
