/**
 * Helpers of the registry store tests: a temp registry home with ibms.conf and the three cluster files, a
 * small cluster, and a logger that keeps what it was told.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig } from '../../../src/core/cluster-model.js';
import { defaultIbmsConfText, formatClusterConfig, parseIbmsConf, type IbmsConfig } from '../../../src/core/config/index.js';
import { ibpHome, initHomeDirs, type IbpHome } from '../../../src/core/home.js';
import { clusterConfPaths, RegistryStore, type RegistryStoreOptions, type StoreLogger } from '../../../src/registry/store/index.js';

/**
 * A small cluster:
 * - P1: ECIF serves echo + file to CORE; P2: CRM serves crm_query to ECIF; P3: CORE serves core_local to GW.
 * - LONE is in no project; `orphan` is in no project.
 */
export function smallCluster(): ClusterConfig {
  const node = (name: string, ip: string, kv: Record<string, string> = {}) => ({
    node: name, invalid: false, hosts: [{ ip, port: 18001, clientOnly: false, invalid: false }], keyExp: `${name.toLowerCase()}-key`, kv,
  });
  const app = (code: string, serverNode = '') => ({
    app: code, desc: `${code} desc`, bin: `${code}.mjs`, timeout: 30, timeout2: 0, serverNode, invalid: false,
  });
  return {
    nodes: [
      node('ECIF', '127.0.0.2', { ecif_secret: 's1' }),
      { ...node('CORE', '127.0.0.3', { core_param: 'p' }), hosts: [{ ip: '127.0.0.3', port: 18001, clientOnly: true, invalid: false }] },
      node('CRM', '127.0.0.4'),
      node('GW', '127.0.0.5'),
      node('LONE', '127.0.0.6'),
    ],
    apps: [app('ibp_test_echo', 'ECIF'), app('ibp_test_file'), app('crm_query', 'CRM'), app('core_local'), app('orphan')],
    projects: [
      { project: 'P1', serverNodes: ['ECIF'], clientNodes: ['CORE'], apps: ['ibp_test_echo', 'ibp_test_file'] },
      { project: 'P2', serverNodes: ['CRM'], clientNodes: ['ECIF'], apps: ['crm_query'] },
      { project: 'P3', serverNodes: ['CORE'], clientNodes: ['GW'], apps: ['core_local'] },
    ],
  };
}

/** A logger that records its calls. */
export class MemoryLogger implements StoreLogger {
  lines: { level: 'warn' | 'info'; obj: object; msg: string }[] = [];
  warn(obj: object, msg: string): void { this.lines.push({ level: 'warn', obj, msg }); }
  info(obj: object, msg: string): void { this.lines.push({ level: 'info', obj, msg }); }
  warnings(): string[] { return this.lines.filter((l) => l.level === 'warn').map((l) => l.msg); }
}

/** A temp registry home holding a cluster. */
export interface TestHome {
  root: string;
  home: IbpHome;
  conf: IbmsConfig;
  paths: { nodes: string; apps: string; projects: string };
  /** Opens a store on it (the options given win). */
  open(opts?: Partial<RegistryStoreOptions>): RegistryStore;
  writeCluster(c: ClusterConfig): void;
  journalPath: string;
  journalBytes(): Buffer;
  cleanup(): void;
}

/** A fresh home with `cluster` written as the three .conf files. */
export function testHome(cluster: ClusterConfig = smallCluster()): TestHome {
  const root = mkdtempSync(join(tmpdir(), 'ibp-store-'));
  const home = ibpHome(root);
  initHomeDirs(home);
  const conf = parseIbmsConf(defaultIbmsConfText({ ip: '127.0.0.1', port: 0 }), 'ibms.conf');
  const paths = clusterConfPaths(home, conf);
  const writeCluster = (c: ClusterConfig) => {
    const t = formatClusterConfig(c);
    writeFileSync(paths.nodes, t.nodes);
    writeFileSync(paths.apps, t.apps);
    writeFileSync(paths.projects, t.projects);
  };
  writeCluster(cluster);
  const journalPath = join(home.run, 'ibms', 'journal');
  return {
    root, home, conf, paths, writeCluster, journalPath,
    open: (opts = {}) => RegistryStore.open({ home, conf, ...opts }),
    journalBytes: () => readFileSync(journalPath),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A plain, deep copy of the store's cluster (for deepEqual across stores). */
export function plain(c: Readonly<ClusterConfig>): ClusterConfig {
  return JSON.parse(JSON.stringify(c)) as ClusterConfig;
}
