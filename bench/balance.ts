/**
 * `npm run bench:balance` — load balancing with one slow host. Three platforms of one node (STATIC_WORKERPOOL,
 * 2 workers each), 32 callers each on its own long connection, echo of 100-byte messages. Scenarios, in one run:
 *   equal     three equal hosts, `ibas.server.max_conn_tx` N (the baseline)
 *   slow      the third host's app waits D ms per call (IBP_BENCH_DELAY_MS in that platform's environment),
 *             max_conn_tx N: each long connection is moved on after N calls and reconnects to the then
 *             least-loaded host (the shared load table), so callers drift away from the slow host
 *   slow-pin  the same slow host with max_conn_tx 0: long connections stay where round-robin first put them
 *   equal-pin three equal hosts with max_conn_tx 0: what moving connections on costs
 * Prints tx/s, p50, p99, each host's share of the calls and its average number of long connections per
 * scenario, and as the last line one JSON object with slow_share (the slow host's share of calls, slow
 * scenario), ratio_vs_equal (slow tx/s ÷ equal tx/s), the same two for slow-pin (÷ equal-pin), slow_conns (long connections
 * on the slow host, averaged) and equal_pin_ratio (equal ÷ equal-pin tx/s: the cost of moving connections on).
 * Options: --seconds S (measured, per scenario; default 5), --max-conn-tx N (default 50), --delay-ms D
 * (default 8), --callers C (default 32).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbacEnv } from '../src/client/index.js';
import {
  EXAMPLE_APPS, REPO_ROOT, removeScratch, startPlatform, stopPlatform, writeScratchCluster, type ScratchCluster,
} from '../src/cli/scratch-cluster.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!(v >= 0)) throw new Error(`${name} must be a number >= 0`);
  return v;
}
const SECONDS = option('--seconds', 5);
const MAX_CONN_TX = option('--max-conn-tx', 50);
const DELAY_MS = option('--delay-ms', 8);
const CALLERS = option('--callers', 32);
const WARMUP_MS = 1000;
const SAMPLE_MS = 100;
const WORKERS = 2;
const HOSTS = 3;
const SLOW = HOSTS - 1;
const APP = 'ibp_bench_balance';
const MSG = Buffer.alloc(100, 'x');

interface Result {
  name: string;
  tps: number;
  p50: number;
  p99: number;
  count: number;
  errors: number;
  /** Share of the measured calls each host answered, in host order. */
  shares: number[];
  /** Long connections on each host, averaged over samples taken every SAMPLE_MS while measuring. */
  conns: number[];
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Writes `ibas.server.max_conn_tx` into host i's ibas.conf. */
function setMaxConnTx(c: ScratchCluster, i: number, n: number): void {
  const path = join(c.serverHomes[i]!, 'etc', 'ibas.conf');
  const text = readFileSync(path, 'utf8');
  const re = new RegExp(`"port" : ${c.ports[i]}( , "max_conn_tx" : \\d+)? }`);
  if (!re.test(text)) throw new Error(`${path}: no server section to edit`);
  writeFileSync(path, text.replace(re, `"port" : ${c.ports[i]} , "max_conn_tx" : ${n} }`));
}

/** Starts the three platforms (the slow one with IBP_BENCH_DELAY_MS), runs the load, stops them. */
async function scenario(c: ScratchCluster, name: string, slow: boolean, maxConnTx: number): Promise<Result> {
  for (let i = 0; i < HOSTS; i++) setMaxConnTx(c, i, maxConnTx);
  rmSync(join(c.clientHome, 'run', 'ibma', 'load.table'), { force: true }); // no loads left from the last scenario
  const platforms: ChildProcess[] = [];
  try {
    for (let i = 0; i < HOSTS; i++) {
      platforms.push(await startPlatform(c.serverHomes[i]!, slow && i === SLOW ? { IBP_BENCH_DELAY_MS: String(DELAY_MS) } : {}));
    }
    return await load(c, name);
  } finally {
    await Promise.all(platforms.map((p) => stopPlatform(p)));
  }
}

/** CALLERS loops, each on its own long connection, for WARMUP_MS + SECONDS; counts calls per answering host. */
async function load(c: ScratchCluster, name: string): Promise<Result> {
  const env = await IbacEnv.create({ home: c.clientHome });
  const conns = await Promise.all(Array.from({ length: CALLERS }, () => env.connect(c.serverNode)));
  const byPort = new Map<number, number>(c.ports.map((p) => [p, 0]));
  const lat: number[] = [];
  let errors = 0;
  let measuring = false;
  let stopAt = Infinity;
  let count = 0;
  try {
    const loops = conns.map(async (conn) => {
      while (performance.now() < stopAt) {
        const t0 = performance.now();
        try {
          const r = await conn.call(APP, MSG);
          if (measuring) {
            lat.push(performance.now() - t0);
            count++;
            byPort.set(r.host.port, (byPort.get(r.host.port) ?? 0) + 1);
          }
        } catch (err) {
          errors++;
          if (errors < 5) console.error(`${name}: ${(err as Error).message}`);
        }
      }
    });
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    measuring = true;
    const t0 = performance.now();
    stopAt = t0 + SECONDS * 1000;
    const onHost = c.ports.map(() => 0);
    let samples = 0;
    const sampler = setInterval(() => {
      samples++;
      for (const conn of conns) {
        const i = c.ports.indexOf(conn.host?.port ?? -1);
        if (i >= 0) onHost[i]!++;
      }
    }, SAMPLE_MS);
    await Promise.all(loops);
    clearInterval(sampler);
    const elapsed = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    const shares = c.ports.map((p) => (count > 0 ? byPort.get(p)! / count : 0));
    const connsOnHost = onHost.map((n) => (samples > 0 ? n / samples : 0));
    return { name, tps: count / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), count, errors, shares, conns: connsOnHost };
  } finally {
    await Promise.all(conns.map((x) => x.close()));
    await env.close();
  }
}

function print(r: Result): void {
  const shares = r.shares.map((s, i) => `${(s * 100).toFixed(1).padStart(5)}%${i === SLOW ? '*' : ' '}`).join(' ');
  const conns = r.conns.map((n, i) => `${n.toFixed(1).padStart(4)}${i === SLOW ? '*' : ' '}`).join(' ');
  console.log(`${r.name.padEnd(22)} ${r.tps.toFixed(0).padStart(6)} tx/s   p50 ${r.p50.toFixed(2).padStart(5)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   `
    + `calls ${shares}   connections ${conns}   (${r.count} tx, ${r.errors} errors)`);
}

async function main(): Promise<void> {
  const base = join(tmpdir(), `ibp-bench-balance-${process.pid}`);
  const apps = [...EXAMPLE_APPS, { app: APP, source: join(REPO_ROOT, 'bench', 'apps', `${APP}.mjs`) }];
  // No worker recycling (max_process_count 0): a recycle moves every connection of a worker on, which would blur
  // what max_conn_tx does (at 10,000 transactions, the default, a worker here recycles every few seconds).
  const c = await writeScratchCluster({ base, serverHosts: HOSTS, workers: WORKERS, apps, mpmExtra: '"max_process_count" : 0' });
  try {
    console.log(`balance bench: ${HOSTS} hosts × ${WORKERS} workers (STATIC_WORKERPOOL, no recycling), ${CALLERS} callers on long connections, `
      + `${MSG.length}-byte echo, slow host (*) waits ${DELAY_MS} ms per call, ${SECONDS} s per scenario after ${WARMUP_MS} ms warm-up, node ${process.version}`);
    const equal = await scenario(c, `equal, max_conn_tx ${MAX_CONN_TX}`, false, MAX_CONN_TX);
    print(equal);
    const slow = await scenario(c, `slow, max_conn_tx ${MAX_CONN_TX}`, true, MAX_CONN_TX);
    print(slow);
    const pinned = await scenario(c, 'slow, max_conn_tx 0', true, 0);
    print(pinned);
    const equalPinned = await scenario(c, 'equal, max_conn_tx 0', false, 0);
    print(equalPinned);
    const summary = {
      bench: 'balance',
      slow_share: +slow.shares[SLOW]!.toFixed(3),
      ratio_vs_equal: +(slow.tps / equal.tps).toFixed(3),
      slow_share_pinned: +pinned.shares[SLOW]!.toFixed(3),
      ratio_vs_equal_pinned: +(pinned.tps / equalPinned.tps).toFixed(3),
      equal_pin_ratio: +(equal.tps / equalPinned.tps).toFixed(3),
      equal_tps: Math.round(equal.tps),
      slow_tps: Math.round(slow.tps),
      pinned_tps: Math.round(pinned.tps),
      equal_pinned_tps: Math.round(equalPinned.tps),
      slow_conns: +slow.conns[SLOW]!.toFixed(1),
      slow_conns_pinned: +pinned.conns[SLOW]!.toFixed(1),
      slow_p99_ms: +slow.p99.toFixed(2),
      pinned_p99_ms: +pinned.p99.toFixed(2),
      max_conn_tx: MAX_CONN_TX,
      delay_ms: DELAY_MS,
      errors: equal.errors + slow.errors + pinned.errors + equalPinned.errors,
    };
    console.log(`slow host's share of calls: ${(summary.slow_share * 100).toFixed(1)}% with max_conn_tx ${MAX_CONN_TX}, `
      + `${(summary.slow_share_pinned * 100).toFixed(1)}% pinned (max_conn_tx 0); tx/s vs three equal hosts: ${summary.ratio_vs_equal} `
      + `(both pinned: ${summary.ratio_vs_equal_pinned}); long connections on the slow host ${summary.slow_conns} of ${CALLERS} (pinned ${summary.slow_conns_pinned}); `
      + `p99 ${summary.slow_p99_ms} ms (pinned ${summary.pinned_p99_ms} ms); max_conn_tx ${MAX_CONN_TX} vs 0 with equal hosts: ${summary.equal_pin_ratio}`);
    console.log(JSON.stringify(summary));
  } finally {
    removeScratch(base);
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
