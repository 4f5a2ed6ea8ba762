/**
 * `npm run bench:secure` — echo transactions with message security (docs/protocol.md §Security) against plain, in
 * the same run: two scratch clusters with one platform each (2 workers), one with `sign_flag`, `compress_flag` and
 * `encrypt_flag` on and a node key in every replica, one with all flags off, and one with sign + encrypt but no
 * compression (to show what compression costs). 16 callers on long connections send a 1 KiB JSON body
 * (compressible, past `min_compress_size`); the sides are measured in alternating rounds after a warm-up.
 * Prints tx/s, p50, p99 per round and, as the last line, one JSON object with `plain_tps`, `secure_tps`,
 * `sign_encrypt_tps`, `secure_ratio` (secure ÷ plain) and `sign_encrypt_ratio`. Options: --seconds N (per round,
 * default 3), --rounds N (default 2).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbacEnv, type IbacConnection } from '../src/client/index.js';
import { readCurrentSnapshot, writeSnapshot } from '../src/agent/index.js';
import { EXAMPLE_APPS, removeScratch, startPlatform, stopPlatform, writeScratchCluster, type ScratchCluster } from '../src/cli/scratch-cluster.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('--seconds', 3);
const ROUNDS = arg('--rounds', 2);
const CALLERS = 16;
const APP = 'ibp_test_echo';
const BODY = JSON.stringify({ account: 'ACC-0001', items: Array.from({ length: 20 }, (_, i) => ({ sku: `SKU-${i}`, qty: i, note: 'standard delivery' })) }).slice(0, 1024);

interface Side {
  name: 'plain' | 'secure' | 'sign+enc';
  cluster: ScratchCluster;
  platform: ChildProcess;
  env: IbacEnv;
  conns: IbacConnection[];
  tps: number[];
}

async function start(name: Side['name']): Promise<Side> {
  const base = join(tmpdir(), `ibp-bench-secure-${name.replace('+', '-')}-${process.pid}`);
  const cluster = await writeScratchCluster({ base, serverHosts: 1, workers: 2, apps: EXAMPLE_APPS });
  if (name !== 'plain') {
    for (const home of [cluster.clientHome, ...cluster.serverHomes]) {
      const dir = join(home, 'run', 'ibma');
      const { format: _f, version: _v, ...data } = readCurrentSnapshot(dir);
      void _f;
      void _v;
      writeSnapshot(dir, { ...data, nodes: data.nodes.map((n) => (n.name === cluster.serverNode ? { ...n, keyExp: 'bench-node-key' } : n)) });
    }
    const conf = join(cluster.serverHomes[0]!, 'etc', 'ibas.conf');
    const flags = `"sign_flag" : 1 , "compress_flag" : ${name === 'secure' ? 1 : 0} , "encrypt_flag" : 1`;
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('"sign_flag" : 0 , "compress_flag" : 0 , "encrypt_flag" : 0', flags));
  }
  const platform = await startPlatform(cluster.serverHomes[0]!);
  const env = await IbacEnv.create({ home: cluster.clientHome });
  const conns = await Promise.all(Array.from({ length: CALLERS }, () => env.connect(cluster.serverNode)));
  return { name, cluster, platform, env, conns, tps: [] };
}

async function round(s: Side, counted = true): Promise<void> {
  const lat: number[] = [];
  let errors = 0;
  let measuring = false;
  let stopAt = Infinity;
  const loops = s.conns.map(async (c) => {
    while (performance.now() < stopAt) {
      const t0 = performance.now();
      try {
        const r = await c.call(APP, BODY);
        if (r.body.length !== BODY.length) throw new Error('echo mismatch');
        if (measuring) lat.push(performance.now() - t0);
      } catch (err) {
        if (errors++ < 3) console.error(`${s.name}: ${(err as Error).message}`);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  measuring = true;
  const t0 = performance.now();
  stopAt = t0 + SECONDS * 1000;
  await Promise.all(loops);
  const tps = lat.length / ((performance.now() - t0) / 1000);
  if (!counted) return;
  s.tps.push(tps);
  lat.sort((a, b) => a - b);
  const p = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0;
  console.log(`${s.name.padEnd(8)} ${tps.toFixed(0).padStart(7)} tx/s   p50 ${p(0.5).toFixed(3)} ms   p99 ${p(0.99).toFixed(3)} ms   (${lat.length} tx, ${errors} errors)`);
}

async function stop(s: Side): Promise<void> {
  await Promise.all(s.conns.map((c) => c.close()));
  await s.env.close();
  await stopPlatform(s.platform);
  removeScratch(s.cluster.base);
}

const sides: Side[] = [];
try {
  sides.push(await start('plain'), await start('secure'), await start('sign+enc'));
  console.log(`bench:secure  ${CALLERS} callers on long connections, ${BODY.length}-byte body, ${ROUNDS} × ${SECONDS} s per side: secure = sign+compress+encrypt, plain, sign+enc`);
  for (const s of sides) {
    // Warm-up (JIT, connections, worker caches); not counted.
    await round(s, false);
  }
  for (let i = 0; i < ROUNDS; i++) for (const s of i % 2 === 0 ? sides : [...sides].reverse()) await round(s);
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
  const plain = mean(sides[0]!.tps);
  const secure = mean(sides[1]!.tps);
  const signEnc = mean(sides[2]!.tps);
  console.log(JSON.stringify({
    plain_tps: Math.round(plain), secure_tps: Math.round(secure), sign_encrypt_tps: Math.round(signEnc),
    secure_ratio: Number((secure / plain).toFixed(3)), sign_encrypt_ratio: Number((signEnc / plain).toFixed(3)), body_bytes: BODY.length, callers: CALLERS,
  }));
} finally {
  await Promise.all(sides.map(stop));
}
