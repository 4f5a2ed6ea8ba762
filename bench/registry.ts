/**
 * `npm run bench:registry`: the registry at scale, in one run, on a generated cluster (default 2,000 nodes /
 * 10,000 hosts / 100,000 apps / 5,000 projects, bench/registry-gen.ts):
 *
 * 1. start-up load: the three cluster files loaded from `.conf` and from their `.bin` images, against a bare read
 *    of the same bytes (best of a few rounds); the `.bin` load decodes records on first access, so the load
 *    plus decoding every record is printed too; and the store's whole `open` from each;
 * 2. distribution: a real `ibms` daemon on that home; 1,000 simulated agents (one per node N00000…N00999) each
 *    fetch their view and park a real HTTP long-poll (`GET /v1/view?index=V&wait=60`, node-signed); a change touching
 *    those 1,000 nodes (a `set_node_kv` each, journaled) is distributed, and the time from the
 *    `distribute_config` call until every agent has received its new version is measured;
 * 3. the registry worker's peak RSS (VmHWM of /proc/<worker pid>/status) after all of it.
 *
 * The simulated nodes share one RSA key pair: the same public key is written as `keys/<NODE>.pub` under each name
 * (generating 1,000 pairs would take minutes and measures nothing about the registry). Each request is still
 * signed and verified, and each view's keys are still encrypted per node.
 *
 * Options: --nodes --hosts --apps --projects (sizes), --agents (default 1000), --rounds (default 5).
 * The last line printed is one JSON object: {bin_vs_conf, bin_vs_read, agents_updated_ms, registry_peak_rss_mb}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultIbmsConfText, formatClusterConfig, parseIbmsConf } from '../src/core/config/index.js';
import { ibpHome, initHomeDirs } from '../src/core/home.js';
import { ensureAdminToken, generateNodeKeyPair, RegistryClient, signNodeRequest } from '../src/registry/index.js';
import { binPathOf, clusterConfPaths, loadClusterFiles, RegistryStore } from '../src/registry/store/index.js';
import { generateCluster, genNodeName } from './registry-gen.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const sizes = { nodes: arg('nodes', 2000), hosts: arg('hosts', 10000), apps: arg('apps', 100000), projects: arg('projects', 5000) };
const AGENTS = Math.min(arg('agents', 1000), sizes.nodes);
const ROUNDS = arg('rounds', 5);
const IBMS = fileURLToPath(new URL('../src/cli/ibms.js', import.meta.url));

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** Best wall time of `rounds` runs, ms. */
function best(fn: () => unknown, rounds = ROUNDS): number {
  let min = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

/** Starts `ibms -a start --foreground` (own process group); resolves with its address and pids. */
function startIbms(home: string): Promise<{ child: ChildProcess; port: number; workerPid: number }> {
  const child = spawn(process.execPath, [IBMS, '-a', 'start', '--foreground', '--home', home], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ibms not ready in 180 s:\n${out}`)), 180_000);
    child.once('exit', (code) => reject(new Error(`ibms exited ${code}:\n${out}`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ibms ready ip=\S+ port=(\d+) pid=\d+ worker=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), workerPid: Number(m[2]) });
      }
    });
  });
}

/** One signed GET /v1/view; resolves with the status, the version header and when the body was complete. */
function getView(port: number, node: string, key: KeyObject, index?: number, waitSec?: number): Promise<{ status: number; version: number; doneAt: number }> {
  const path = index === undefined ? '/v1/view' : `/v1/view?index=${index}&wait=${waitSec ?? 60}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: signNodeRequest(node, key, 'GET', path) }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, version: Number(res.headers['x-ibp-index'] ?? -1), doneAt: performance.now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Peak and current RSS of a process, MB (VmHWM, VmRSS of /proc/<pid>/status). */
function rssOf(pid: number): { peakMb: number; nowMb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { peakMb: r1(kb('VmHWM') / 1024), nowMb: r1(kb('VmRSS') / 1024) };
}

/** CPU time (user + system) a process has used so far, ms (/proc/<pid>/stat; 10 ms ticks). */
function cpuMsOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const root = mkdtempSync(join(tmpdir(), 'ibp-registry-bench-'));
let ibms: ChildProcess | undefined;
try {
  console.log(`machine: ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} (figures are wall times)`);
  // ---- 1. start-up load: .conf vs .bin vs a bare read ----
  const home = ibpHome(root);
  initHomeDirs(home);
  const confText = defaultIbmsConfText({ ip: '127.0.0.1', port: 0 });
  writeFileSync(join(home.etc, 'ibms.conf'), confText);
  const conf = parseIbmsConf(confText, 'ibms.conf');
  const paths = clusterConfPaths(home, conf);
  let t = performance.now();
  const texts = formatClusterConfig(generateCluster(sizes));
  writeFileSync(paths.nodes, texts.nodes);
  writeFileSync(paths.apps, texts.apps);
  writeFileSync(paths.projects, texts.projects);
  const kinds = ['nodes', 'apps', 'projects'] as const;
  const mb = (files: string[]): string => (files.reduce((n, f) => n + readFileSync(f).length, 0) / 1048576).toFixed(1);
  console.log(`cluster ${sizes.nodes} nodes / ${sizes.hosts} hosts / ${sizes.apps} apps / ${sizes.projects} projects generated in ${r1(performance.now() - t)} ms: .conf ${mb(kinds.map((k) => paths[k]))} MB`);

  const readConf = best(() => kinds.map((k) => readFileSync(paths[k])));
  const loadConf = best(() => loadClusterFiles({ paths }), 2);
  t = performance.now();
  const s0 = RegistryStore.open({ home, conf });
  const openConf = performance.now() - t;
  s0.buildConfig();
  s0.close();
  const bins = kinds.map((k) => binPathOf(paths[k]));
  const readBin = best(() => bins.map((f) => readFileSync(f)));
  const loadBin = best(() => {
    if (loadClusterFiles({ paths, binCheck: 'stat' }).from.apps !== 'bin') throw new Error('the .bin image was not used');
  });
  // the load above opens the images (read, header, table sizes) and decodes no record: records are decoded on
  // first access (docs/registry-store.md, "Images"); this is the load plus reading every record
  const loadBinAll = best(() => loadClusterFiles({ paths, binCheck: 'stat' }).cluster);
  t = performance.now();
  RegistryStore.open({ home, conf }).close();
  const openBin = performance.now() - t;
  const binVsConf = loadConf / loadBin;
  const binVsRead = loadBin / readBin;
  console.log(`.bin ${mb(bins)} MB; bare read .conf ${r1(readConf)} ms, .bin ${r1(readBin)} ms`);
  console.log(`load from .conf ${r1(loadConf)} ms, from .bin ${r1(loadBin)} ms: .bin ${r1(binVsConf)}x faster than .conf (aim >= 5), ${r1(binVsRead)}x a bare read of the .bin (aim <= 3), ${r1(loadBin / readConf)}x a bare read of the .conf`);
  console.log(`load from .bin and decode every record (what the store's open does) ${r1(loadBinAll)} ms: ${r1(loadConf / loadBinAll)}x faster than .conf`);
  console.log(`store open (load + journal + views) from .conf ${r1(openConf)} ms, from .bin ${r1(openBin)} ms`);

  // ---- 2. distribution to AGENTS long-polling agents through a real ibms ----
  t = performance.now();
  const pair = generateNodeKeyPair();
  const key = createPrivateKey(pair.privateKeyPem);
  const agents = Array.from({ length: AGENTS }, (_, i) => genNodeName(i));
  for (const n of agents) writeFileSync(join(home.keys, `${n}.pub`), pair.publicKeyPem);
  ensureAdminToken(join(home.keys, 'ibms.admin.token'));
  const started = await startIbms(root);
  ibms = started.child;
  const { port, workerPid } = started;
  console.log(`ibms started in ${r1(performance.now() - t)} ms on port ${port} (worker pid ${workerPid}); ${AGENTS} node keys (one pair, ${AGENTS} .pub files)`);
  const admin = new RegistryClient({ ip: '127.0.0.1', port, adminToken: readFileSync(join(home.keys, 'ibms.admin.token'), 'utf8').trim(), timeoutMs: 300_000 });
  t = performance.now();
  const first = await admin.admin<{ nodes: string[]; version: number }>('POST', 'distribute_config', {});
  console.log(`first distribute_config (every node pending after the start): ${first.nodes.length} nodes, version ${first.version}, ${r1(performance.now() - t)} ms`);

  t = performance.now();
  const initial = new Map<string, number>();
  await pool(agents, 100, async (n) => {
    const v = await getView(port, n, key);
    if (v.status !== 200) throw new Error(`GET /v1/view as ${n}: HTTP ${v.status}`);
    initial.set(n, v.version);
  });
  console.log(`${AGENTS} agents fetched their views in ${r1(performance.now() - t)} ms`);
  const updates = agents.map((n) => getView(port, n, key, initial.get(n)!, 60));
  // parked when the registry lists each agent's poll at its index (the row is made in the same tick as the wait)
  for (let i = 0; ; i++) {
    const { rows } = await admin.admin<{ rows: { role: string; node: string; viewVersion?: number }[] }>('GET', 'sessions');
    const parked = rows.filter((r) => r.role === 'view' && r.viewVersion !== undefined && initial.get(r.node) === r.viewVersion).length;
    if (parked >= AGENTS) break;
    if (i > 600) throw new Error(`only ${parked} of ${AGENTS} long-polls parked`);
    await new Promise((res) => setTimeout(res, 50));
  }
  t = performance.now();
  await pool(agents, 8, (n) => admin.admin('POST', 'apply', { action: 'set_node_kv', node: n, key: 'param_0', value: `changed ${n}` }));
  console.log(`the change: ${AGENTS} set_node_kv (journaled, fsync each) in ${r1(performance.now() - t)} ms; ${AGENTS} long-polls parked`);
  const cpu0 = cpuMsOf(workerPid);
  const t0 = performance.now();
  const dist = await admin.admin<{ nodes: string[]; version: number }>('POST', 'distribute_config', {});
  const distMs = performance.now() - t0;
  const cpuDist = cpuMsOf(workerPid) - cpu0;
  const got = await Promise.all(updates);
  const cpuAll = cpuMsOf(workerPid) - cpu0;
  const stale = got.filter((g, i) => g.status !== 200 || !(g.version > initial.get(agents[i]!)!));
  if (stale.length > 0) throw new Error(`${stale.length} agents did not get a newer version (e.g. HTTP ${stale[0]!.status})`);
  const lat = got.map((g) => g.doneAt - t0).sort((a, b) => a - b);
  const agentsUpdatedMs = lat[lat.length - 1]!;
  console.log(`distribute_config of ${dist.nodes.length} nodes (version ${dist.version}) answered in ${r1(distMs)} ms; every agent had its new view ${r1(agentsUpdatedMs)} ms after the call (first ${r1(lat[0]!)} ms, median ${r1(lat[lat.length >> 1]!)} ms; aim <= 2000)`);
  console.log(`registry worker CPU time (steadier than wall time on a busy machine): ${r1(cpuDist)} ms until distribute_config answered, ${r1(cpuAll)} ms until the last agent had its view`);
  admin.close();

  // ---- 3. the worker's peak memory ----
  const rss = rssOf(workerPid);
  console.log(`registry worker RSS: peak (VmHWM) ${rss.peakMb} MB, now ${rss.nowMb} MB`);
  console.log(JSON.stringify({ bin_vs_conf: r2(binVsConf), bin_vs_read: r2(binVsRead), agents_updated_ms: r1(agentsUpdatedMs), registry_peak_rss_mb: rss.peakMb }));
} finally {
  if (ibms?.pid) {
    const child = ibms;
    await new Promise<void>((res) => {
      const k = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 30_000);
      child.once('exit', () => {
        clearTimeout(k);
        res();
      });
      if (child.exitCode !== null || child.signalCode !== null) res();
      else child.kill('SIGTERM');
    });
  }
  rmSync(root, { recursive: true, force: true });
}
