/**
 * Consistency of a cluster config as a whole: unique names, unique host addresses, app timeouts, and
 * projects (and apps' default server nodes) that name only existing nodes and apps.
 */
import { isIP } from 'node:net';
import type { ClusterConfig } from '../cluster-model.js';
import { appCodeProblem, isHostText, nodeNameProblem } from './fields.js';
import { problemsToError, type ConfigProblem } from './problems.js';

/** Which of the three files a finding belongs to. */
export type ClusterFileKind = 'nodes' | 'apps' | 'projects';

/** A finding about a cluster config, with the key path inside its file. */
export interface ClusterFinding {
  file: ClusterFileKind;
  path: (string | number)[];
  message: string;
}

const q = (s: string) => JSON.stringify(s);

/** Everything wrong with a cluster config, in file order (nodes, apps, projects). */
export function findClusterProblems(c: ClusterConfig): ClusterFinding[] {
  const out: ClusterFinding[] = [];
  const nodeIndex = new Map<string, number>();
  const hostOwner = new Map<string, string>();
  c.nodes.forEach((n, i) => {
    const nameProblem = nodeNameProblem(n.node);
    if (nameProblem !== undefined) out.push({ file: 'nodes', path: ['nodes', i, 'node'], message: `nodes[${i}].node: got ${q(String(n.node))}, ${nameProblem}` });
    const first = nodeIndex.get(n.node);
    if (first !== undefined) out.push({ file: 'nodes', path: ['nodes', i, 'node'], message: `duplicate node ${q(n.node)} (also nodes[${first}])` });
    else nodeIndex.set(n.node, i);
    n.hosts.forEach((h, j) => {
      const where = `node ${q(n.node)} host ${h.ip}:${h.port}`;
      if (typeof h.ip !== 'string' || !isHostText(h.ip)) out.push({ file: 'nodes', path: ['nodes', i, 'hosts', j, 'ip'], message: `${where}: expected an IP address or host name` });
      if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535) out.push({ file: 'nodes', path: ['nodes', i, 'hosts', j, 'port'], message: `${where}: expected a port from 1 to 65535` });
      const addr = isIP(h.ip) === 6 ? `[${h.ip}]:${h.port}` : `${h.ip}:${h.port}`;
      const owner = hostOwner.get(addr);
      if (owner !== undefined) out.push({ file: 'nodes', path: ['nodes', i, 'hosts', j], message: `duplicate host ${addr} in node ${q(n.node)} (already a host of node ${q(owner)})` });
      else hostOwner.set(addr, n.node);
    });
    for (const [k, v] of Object.entries(n.kv)) {
      if (typeof v !== 'string') out.push({ file: 'nodes', path: ['nodes', i, 'kv', k], message: `node ${q(n.node)} kv ${q(k)}: expected a string value` });
    }
  });

  const appIndex = new Map<string, number>();
  c.apps.forEach((a, i) => {
    const codeProblem = appCodeProblem(a.app);
    if (codeProblem !== undefined) out.push({ file: 'apps', path: ['apps', i, 'app'], message: `apps[${i}].app: got ${q(String(a.app))}, ${codeProblem}` });
    const first = appIndex.get(a.app);
    if (first !== undefined) out.push({ file: 'apps', path: ['apps', i, 'app'], message: `duplicate app ${q(a.app)} (also apps[${first}])` });
    else appIndex.set(a.app, i);
    if (!(a.timeout > 0) || !Number.isFinite(a.timeout)) out.push({ file: 'apps', path: ['apps', i, 'timeout'], message: `app ${q(a.app)}: timeout must be > 0 seconds, got ${a.timeout}` });
    if (!(a.timeout2 >= 0) || !Number.isFinite(a.timeout2)) out.push({ file: 'apps', path: ['apps', i, 'timeout2'], message: `app ${q(a.app)}: timeout2 must be >= 0 seconds (0 = timeout x 1.5), got ${a.timeout2}` });
    if (a.serverNode !== '' && !nodeIndex.has(a.serverNode)) out.push({ file: 'apps', path: ['apps', i, 'server_node'], message: `app ${q(a.app)}: server_node names unknown node ${q(a.serverNode)}` });
  });

  const projectIndex = new Map<string, number>();
  c.projects.forEach((p, i) => {
    const first = projectIndex.get(p.project);
    if (p.project === '') out.push({ file: 'projects', path: ['projects', i, 'project'], message: `projects[${i}].project: expected a non-empty name` });
    else if (first !== undefined) out.push({ file: 'projects', path: ['projects', i, 'project'], message: `duplicate project ${q(p.project)} (also projects[${first}])` });
    else projectIndex.set(p.project, i);
    for (const [list, key] of [[p.serverNodes, 'server_nodes'], [p.clientNodes, 'client_nodes']] as const) {
      for (const n of list) {
        if (!nodeIndex.has(n)) out.push({ file: 'projects', path: ['projects', i, key], message: `project ${q(p.project)}: ${key} names unknown node ${q(n)}` });
      }
    }
    for (const a of p.apps) {
      if (!appIndex.has(a)) out.push({ file: 'projects', path: ['projects', i, 'apps'], message: `project ${q(p.project)}: apps names unknown app ${q(a)}` });
    }
  });
  return out;
}

/**
 * Checks a cluster config as a whole (the loader calls it; the registry calls it before accepting an edit).
 * @throws IbpError IBP_ERR_CONFIG_INVALID naming every offender, one per line.
 */
export function validateClusterConfig(c: ClusterConfig): void {
  const findings = findClusterProblems(c);
  if (findings.length === 0) return;
  const problems: ConfigProblem[] = findings.map((f) => ({ code: 'IBP_ERR_CONFIG_INVALID', path: f.path, message: f.message }));
  throw problemsToError(problems);
}
