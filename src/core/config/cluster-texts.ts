/**
 * Writing the cluster files in the original's style (what `save_config` and `ibms -a init` produce).
 * The output reads back with loadClusterConfig to the same model.
 */
import type { AppConfig, ClusterConfig, NodeConfig, ProjectConfig } from '../cluster-model.js';

/** The texts of the three cluster files. */
export interface ClusterConfTexts {
  nodes: string;
  apps: string;
  projects: string;
}

const s = (v: string) => JSON.stringify(v);
const flag = (b: boolean) => (b ? '"1"' : '"0"');

function nodeText(n: NodeConfig): string {
  const lines = [`\t{`, `\t\t"node" : ${s(n.node)} ,`, `\t\t"invalid" : ${flag(n.invalid)} ,`];
  if (n.keyExp !== '') lines.push(`\t\t"key_exp" : ${s(n.keyExp)} ,`);
  const kv = Object.entries(n.kv);
  const hosts = n.hosts.map((h) => {
    const port = h.clientOnly ? -h.port : h.port;
    return `\t\t{ "ip" : ${s(h.ip)} , "port" : ${port}${h.invalid ? ' , "invalid" : "1"' : ''} }`;
  });
  lines.push(`\t\t"hosts" :`, `\t\t[`, hosts.join(' ,\n'), `\t\t]${kv.length > 0 ? ' ,' : ''}`);
  if (kv.length > 0) {
    lines.push(`\t\t"kv" :`, `\t\t{`, kv.map(([k, v]) => `\t\t\t${s(k)} : ${s(v)}`).join(' ,\n'), `\t\t}`);
  }
  lines.push(`\t}`);
  return lines.filter((l) => l !== '').join('\n');
}

function appText(a: AppConfig): string {
  const lines = [
    `\t{`,
    `\t\t"app" : ${s(a.app)} ,`,
    `\t\t"desc" : ${s(a.desc)} ,`,
    `\t\t"bin" : ${s(a.bin)} ,`,
    `\t\t"timeout" : ${s(String(a.timeout))} ,`,
    `\t\t"timeout2" : ${s(String(a.timeout2))} ,`,
  ];
  if (a.serverNode !== '') lines.push(`\t\t"server_node" : ${s(a.serverNode)} ,`);
  lines.push(`\t\t"invalid" : ${flag(a.invalid)}`, `\t}`);
  return lines.join('\n');
}

function projectText(p: ProjectConfig): string {
  return [
    `\t{`,
    `\t\t"project" : ${s(p.project)} ,`,
    `\t\t"server_nodes" : ${s(p.serverNodes.join(' '))} ,`,
    `\t\t"client_nodes" : ${s(p.clientNodes.join(' '))} ,`,
    `\t\t"apps" : ${s(p.apps.join(' '))}`,
    `\t}`,
  ].join('\n');
}

function fileText(top: string, items: string[]): string {
  const body = items.length === 0 ? '' : `${items.join(' ,\n')}\n`;
  return `{\n\t${s(top)} :\n\t[\n${body}\t]\n}\n`;
}

/** The three cluster files for a cluster config (the model is not validated here). */
export function formatClusterConfig(c: ClusterConfig): ClusterConfTexts {
  return {
    nodes: fileText('nodes', c.nodes.map(nodeText)),
    apps: fileText('apps', c.apps.map(appText)),
    projects: fileText('projects', c.projects.map(projectText)),
  };
}

/** The empty cluster files `ibms -a init` writes. */
export function defaultClusterConfTexts(): ClusterConfTexts {
  return formatClusterConfig({ nodes: [], apps: [], projects: [] });
}
