/**
 * A generator of big, valid cluster configs for the registry benchmarks (and the store's tests): nodes with
 * hosts and KV, apps spread over package files, projects with server and client nodes. Deterministic: the
 * same sizes give the same cluster.
 *
 * @example
 * const c = generateCluster({ nodes: 2000, hosts: 10000, apps: 100000, projects: 5000 });
 * writeFileSync(join(home.etc, 'ibp_apps.conf'), formatClusterConfig(c).apps);
 */
import type { AppConfig, ClusterConfig, HostConfig, NodeConfig, ProjectConfig } from '../src/core/cluster-model.js';

/** Sizes of a generated cluster. */
export interface ClusterSizes {
  nodes: number;
  /** Hosts over all nodes (spread evenly; every 5th host is client-only). */
  hosts: number;
  apps: number;
  projects: number;
  /** Apps per package file (`bin`); default 10. */
  appsPerBin?: number;
  /** KV entries per node; default 3. */
  kvPerNode?: number;
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** The name of generated node `i` (0-based). */
export function genNodeName(i: number): string {
  return `N${pad(i, 5)}`;
}

/** The code of generated app `i` (0-based). */
export function genAppName(i: number): string {
  return `app_${pad(i, 6)}`;
}

/**
 * A valid cluster of the given sizes. Each project has 1-2 server nodes, 1-4 client nodes and its share of
 * the apps (every app is in exactly one project when `apps >= projects`); an app's `server_node` is its
 * project's first server node on every other app.
 */
export function generateCluster(sizes: ClusterSizes): ClusterConfig {
  const rnd = prng(0x1b9);
  const nodeCount = Math.max(1, sizes.nodes);
  const appsPerBin = Math.max(1, sizes.appsPerBin ?? 10);
  const kvPerNode = sizes.kvPerNode ?? 3;

  const nodes: NodeConfig[] = [];
  let host = 0;
  for (let i = 0; i < nodeCount; i++) {
    const hostCount = Math.floor(sizes.hosts / nodeCount) + (i < sizes.hosts % nodeCount ? 1 : 0);
    const hosts: HostConfig[] = [];
    for (let j = 0; j < hostCount; j++, host++) {
      // 10.a.b.c with a distinct address per host; ports vary too
      const ip = `10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}`;
      hosts.push({ ip, port: 18000 + (host % 1000), clientOnly: host % 5 === 4, invalid: false });
    }
    const kv: Record<string, string> = {};
    for (let k = 0; k < kvPerNode; k++) kv[`param_${k}`] = `value ${i}.${k}`;
    nodes.push({ node: genNodeName(i), invalid: false, hosts, keyExp: `key-${pad(i, 5)}-${Math.floor(rnd() * 1e9).toString(16)}`, kv });
  }

  const projectCount = Math.max(0, sizes.projects);
  const projects: ProjectConfig[] = [];
  for (let p = 0; p < projectCount; p++) {
    const servers = new Set<string>();
    const serverCount = 1 + Math.floor(rnd() * 2);
    while (servers.size < Math.min(serverCount, nodeCount)) servers.add(genNodeName(Math.floor(rnd() * nodeCount)));
    const clients = new Set<string>();
    const clientCount = 1 + Math.floor(rnd() * 4);
    for (let c = 0; c < clientCount; c++) {
      const n = genNodeName(Math.floor(rnd() * nodeCount));
      if (!servers.has(n)) clients.add(n);
    }
    projects.push({ project: `project_${pad(p, 5)}`, serverNodes: [...servers], clientNodes: [...clients], apps: [] });
  }

  const apps: AppConfig[] = [];
  for (let i = 0; i < sizes.apps; i++) {
    const code = genAppName(i);
    const project = projects.length > 0 ? projects[i % projects.length] : undefined;
    project?.apps.push(code);
    apps.push({
      app: code,
      desc: `generated transaction ${i} of project ${project?.project ?? 'none'}`,
      bin: `pkg_${pad(Math.floor(i / appsPerBin), 5)}.mjs`,
      timeout: 30 + (i % 5) * 10,
      timeout2: i % 3 === 0 ? 0 : 60,
      serverNode: project !== undefined && i % 2 === 0 ? (project.serverNodes[0] ?? '') : '',
      invalid: i % 97 === 0,
    });
  }
  return { nodes, apps, projects };
}
