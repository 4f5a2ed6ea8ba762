/**
 * Measures the registry store on a generated big cluster (default 2,000 nodes / 10,000 hosts / 100,000 apps /
 * 5,000 projects): loading the `.conf` files vs their `.bin` images (against a bare read of the bytes), open,
 * one apply, and a distribute of 1,000 pending nodes. Prints one human line per figure and one JSON line.
 * Run: `npx tsc -p . && node dist/bench/registry-store-load.js [--nodes N --hosts H --apps A --projects P]`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultIbmsConfText, formatClusterConfig, parseIbmsConf } from '../src/core/config/index.js';
import { ibpHome, initHomeDirs } from '../src/core/home.js';
import { binPathOf, clusterConfPaths, loadClusterFiles, RegistryStore } from '../src/registry/store/index.js';
import { generateCluster, genNodeName } from './registry-gen.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const sizes = { nodes: arg('nodes', 2000), hosts: arg('hosts', 10000), apps: arg('apps', 100000), projects: arg('projects', 5000) };
const ROUNDS = arg('rounds', 5);

/** CPU time (user + system) of this process, ms: steadier than wall time on a shared machine. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const cpuBest = new Map<string, number>();

/** Best of `rounds` runs, wall ms; the best CPU ms is kept under `name`. */
function best(fn: () => unknown, rounds = ROUNDS, name = ''): number {
  let min = Infinity;
  let minCpu = Infinity;
  for (let i = 0; i < rounds; i++) {
    const c = cpuMs();
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
    minCpu = Math.min(minCpu, cpuMs() - c);
  }
  if (name !== '') cpuBest.set(name, minCpu);
  return min;
}

const root = mkdtempSync(join(tmpdir(), 'ibp-store-bench-'));
try {
  const home = ibpHome(root);
  initHomeDirs(home);
  const conf = parseIbmsConf(defaultIbmsConfText({ ip: '127.0.0.1', port: 0 }), 'ibms.conf');
  const paths = clusterConfPaths(home, conf);
  const texts = formatClusterConfig(generateCluster(sizes));
  writeFileSync(paths.nodes, texts.nodes);
  writeFileSync(paths.apps, texts.apps);
  writeFileSync(paths.projects, texts.projects);
  const kinds = ['nodes', 'apps', 'projects'] as const;
  const confBytes = kinds.reduce((n, k) => n + readFileSync(paths[k]).length, 0);

  const readConf = best(() => kinds.map((k) => readFileSync(paths[k])));
  const readConfText = best(() => kinds.map((k) => readFileSync(paths[k], 'utf8')));
  const loadConf = best(() => loadClusterFiles({ paths }), 2, 'loadConf');
  const openConf = best(() => RegistryStore.open({ home, conf }).close(), 1);
  const store = RegistryStore.open({ home, conf });
  store.buildConfig();
  store.close();
  const binBytes = kinds.reduce((n, k) => n + readFileSync(binPathOf(paths[k])).length, 0);
  const readBin = best(() => kinds.map((k) => readFileSync(binPathOf(paths[k]))));
  const loadBinStat = best(() => {
    const r = loadClusterFiles({ paths, binCheck: 'stat' });
    if (r.from.apps !== 'bin') throw new Error('the .bin was not used');
  }, ROUNDS, 'loadBin');
  // the load above decodes nothing (records are decoded on first access): this one reads every record too
  const loadBinAll = best(() => loadClusterFiles({ paths, binCheck: 'stat' }).cluster, ROUNDS, 'loadBinAll');
  const loadBinSha = best(() => loadClusterFiles({ paths, binCheck: 'sha256' }));
  const openBin = best(() => RegistryStore.open({ home, conf }).close(), 3, 'openBin');

  const s = RegistryStore.open({ home, conf });
  s.distribute(); // every node was pending (never published)
  const applyOne = best(() => s.apply({ action: 'set_node_kv', node: genNodeName(7), key: 'param_0', value: String(Math.random()) }), 20);
  const half = Math.min(1000, sizes.nodes);
  for (let i = 0; i < half; i++) s.apply({ action: 'set_node_kv', node: genNodeName(i), key: 'param_1', value: `v${i}` });
  const c0 = cpuMs();
  const t = performance.now();
  const d = s.distribute();
  const distribute = performance.now() - t;
  cpuBest.set('distribute', cpuMs() - c0);
  s.close();

  const r = (x: number) => Math.round(x * 10) / 10;
  const mb = (b: number) => (b / 1048576).toFixed(1);
  console.log(`cluster ${sizes.nodes} nodes / ${sizes.hosts} hosts / ${sizes.apps} apps / ${sizes.projects} projects: .conf ${mb(confBytes)} MB, .bin ${mb(binBytes)} MB`);
  console.log(`bare read .conf ${r(readConf)} ms (as UTF-8 text ${r(readConfText)} ms), .bin ${r(readBin)} ms`);
  console.log(`load .conf ${r(loadConf)} ms; load .bin (stat check) ${r(loadBinStat)} ms = ${r(loadConf / loadBinStat)}x faster, ${r(loadBinStat / readConf)}x a bare .conf read (${r(loadBinStat / readConfText)}x as text), ${r(loadBinStat / readBin)}x a bare .bin read; (sha256 check) ${r(loadBinSha)} ms; load + decode every record ${r(loadBinAll)} ms`);
  console.log(`open from .conf ${r(openConf)} ms, from .bin ${r(openBin)} ms; one apply ${r(applyOne)} ms; distribute of ${d.nodes.length} nodes ${r(distribute)} ms`);
  const cpu = Object.fromEntries([...cpuBest].map(([k, v]) => [k, r(v)]));
  console.log(`CPU ms (steadier on a busy machine): ${JSON.stringify(cpu)}`);
  console.log(JSON.stringify({
    bench: 'registry-store-load', sizes, confBytes, binBytes, readConfMs: r(readConf), readConfTextMs: r(readConfText), readBinMs: r(readBin), loadConfMs: r(loadConf),
    loadBinStatMs: r(loadBinStat), loadBinAllMs: r(loadBinAll), loadBinShaMs: r(loadBinSha), speedup: r(loadConf / loadBinStat), vsBareConfRead: r(loadBinStat / readConf), vsBareConfTextRead: r(loadBinStat / readConfText),
    vsBareBinRead: r(loadBinStat / readBin), openConfMs: r(openConf), openBinMs: r(openBin), applyMs: r(applyOne),
    distributeNodes: d.nodes.length, distributeMs: r(distribute), cpuMs: cpu,
  }));
} finally {
  rmSync(root, { recursive: true, force: true });
}
