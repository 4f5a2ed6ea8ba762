/**
 * Rewrites what a client home believes about the cluster: which server nodes exist and at which ports. Tests
 * use it to put a fault proxy (or a dead port) between a real client and a real platform: the platform keeps
 * its own config, only the client's local config replica names the proxy's port.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { REPO_ROOT, runCliSync, type ScratchApp } from '../../src/cli/scratch-cluster.js';

/** The fixture app that records each call it runs in file/calls.log (test/fixtures/apps/ibp_t_record.mjs). */
export const RECORD_APP: ScratchApp = {
  app: 'ibp_t_record', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_record.mjs'), timeout: 30,
};

/** The jnlsnos `ibp_t_record` ran on the platform of `serverHome`, in order. */
export function recordedCalls(serverHome: string): string[] {
  try {
    return readFileSync(join(serverHome, 'file', 'calls.log'), 'utf8').split('\n').filter((l) => l.length > 0);
  } catch {
    return [];
  }
}

export interface ViewNode {
  node: string;
  /** The ports the client connects to for this node (on 127.0.0.1). */
  ports: number[];
}

/**
 * Writes the client home's ibp_nodes/apps/projects.conf (each server node in its own project, every app
 * in every project, an app's server_node = the first node) and rebuilds its local config replica.
 */
export function writeClientView(home: string, o: { clientNode: string; nodes: ViewNode[]; apps: ScratchApp[] }): void {
  const nodes = [
    ...o.nodes.map((n) => `    { "node" : "${n.node}" , "invalid" : "0" , "hosts" : [ ${n.ports.map((p) => `{ "ip" : "127.0.0.1" , "port" : ${p} }`).join(' , ')} ] }`),
    `    { "node" : "${o.clientNode}" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.1" , "port" : -10601 } ] }`,
  ];
  const apps = o.apps.map((a) => `    { "app" : "${a.app}" , "desc" : "${a.app}" , "bin" : "${basename(a.source)}" , "timeout" : "${a.timeout ?? 60}" , "timeout2" : "${a.timeout2 ?? 0}" , "invalid" : "0" , "server_node" : "${o.nodes[0]!.node}" }`);
  const projects = o.nodes.map((n, i) => `    { "project" : "p${i}" , "server_nodes" : "${n.node}" , "client_nodes" : "${o.clientNode}" , "apps" : "${o.apps.map((a) => a.app).join(' ')}" }`);
  writeFileSync(join(home, 'etc', 'ibp_nodes.conf'), `{\n  "nodes" : [\n${nodes.join(' ,\n')}\n  ]\n}\n`);
  writeFileSync(join(home, 'etc', 'ibp_apps.conf'), `{\n  "apps" : [\n${apps.join(' ,\n')}\n  ]\n}\n`);
  writeFileSync(join(home, 'etc', 'ibp_projects.conf'), `{\n  "projects" : [\n${projects.join(' ,\n')}\n  ]\n}\n`);
  runCliSync('ibp', ['local-config', '--home', home], home);
}
