/**
 * `npm run bench:pool` — the platform's process modes under load, in one run:
 *
 * 1. DYNAMIC_WORKERPOOL under a step load: min_idle 1, max_idle 2, create_interval 2, destroy_interval 2,
 *    adjust_interval 1 s, max_count 8. Idle, then 6 callers on short connections calling an app that waits 20 ms
 *    (an I/O-bound transaction) — the pool needs 6 busy + 1 idle = 7 workers. Prints the pool size per cycle, how
 *    long and how many cycles it took to reach the needed size, tx/s in the first second of the step and once
 *    grown; then the load stops and the pool shrinks back to max_idle_count.
 * 2. FORK next to STATIC_WORKERPOOL, both with max_count 8 (STATIC: 8 workers; FORK: at most 8 at once), echo,
 *    8 callers on short connections (FORK's cost is a process per connection) and on long connections (FORK: one
 *    process per connection for its whole life, then the same work as a pool).
 * Options: --seconds N (per FORK/STATIC measurement, default 5). Prints a human summary and, as its last line,
 * one JSON object.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { IbacEnv, type IbacConnection } from '../src/client/index.js';
import { boardPathOf, BoardReader } from '../src/platform/index.js';
import { EXAMPLE_APPS, REPO_ROOT, removeScratch, startPlatform, stopPlatform, writeScratchCluster, type ScratchCluster } from '../src/cli/scratch-cluster.js';

const secIdx = process.argv.indexOf('--seconds');
const SECONDS = secIdx > 0 ? Number(process.argv[secIdx + 1]) : 5;
const MSG = Buffer.alloc(100, 'p');
const WAIT_APP = { app: 'ibp_bench_wait20ms', source: join(REPO_ROOT, 'bench', 'apps', 'ibp_bench_wait20ms.mjs'), timeout: 30 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `callers` loops of `once()` until `stop()` says so; counts completed calls and errors. */
function loadLoop(callers: number, once: (i: number) => Promise<void>): { done: () => number; errors: () => number; stop: () => Promise<void> } {
  let on = true;
  let done = 0;
  let errors = 0;
  const loops = Array.from({ length: callers }, async (_, i) => {
    while (on) {
      try {
        await once(i);
        done++;
      } catch (err) {
        errors++;
        if (errors < 5) console.error(`call failed: ${(err as Error).message}`);
      }
    }
  });
  return {
    done: () => done,
    errors: () => errors,
    stop: async () => {
      on = false;
      await Promise.all(loops);
    },
  };
}

async function withPlatform<T>(name: string, o: Parameters<typeof writeScratchCluster>[0] extends infer P ? Omit<P & object, 'base'> : never, fn: (c: ScratchCluster, env: IbacEnv) => Promise<T>): Promise<T> {
  const base = join(tmpdir(), `ibp-bench-pool-${name}-${process.pid}`);
  const cluster = await writeScratchCluster({ ...o, base });
  const platform = await startPlatform(cluster.serverHomes[0]!);
  const env = await IbacEnv.create({ home: cluster.clientHome });
  try {
    return await fn(cluster, env);
  } finally {
    await env.close();
    await stopPlatform(platform);
    removeScratch(base);
  }
}

interface DynamicResult {
  needed: number;
  sizes: { atMs: number; size: number }[];
  rampMs: number;
  cycles: number;
  tpsFirstSecond: number;
  tpsGrown: number;
  shrinkMs: number;
  errors: number;
}

async function dynamicStep(): Promise<DynamicResult> {
  const dynamic = '"min_idle_count" : 1 , "max_idle_count" : 2 , "create_interval" : 2 , "destroy_interval" : 2 , "adjust_interval" : 1';
  return withPlatform('dyn', { serverHosts: 1, workers: 8, mode: 'DYNAMIC_WORKERPOOL', dynamic, apps: [...EXAMPLE_APPS, WAIT_APP] }, async (c, env) => {
    const board = new BoardReader(boardPathOf(c.serverHomes[0]!, '127.0.0.1', c.ports[0]!));
    const size = (): number => board.view().slots.filter((s) => s.state === 'idle' || s.state === 'busy' || s.state === 'starting').length;
    const ready = (): number => board.view().slots.filter((s) => s.state === 'idle' || s.state === 'busy').length;
    try {
      const callers = 6;
      const needed = callers + 1;
      const t0 = performance.now();
      const sizes = [{ atMs: 0, size: size() }];
      const load = loadLoop(callers, async () => void (await env.call(WAIT_APP.app, MSG)));
      await sleep(1000);
      const tpsFirstSecond = load.done();
      let rampMs = -1;
      const rampEnd = t0 + 30_000;
      while (performance.now() < rampEnd) {
        const now = size();
        if (now !== sizes[sizes.length - 1]!.size) sizes.push({ atMs: Math.round(performance.now() - t0), size: now });
        if (ready() >= needed) {
          rampMs = performance.now() - t0;
          break;
        }
        await sleep(20);
      }
      const before = load.done();
      const m0 = performance.now();
      await sleep(3000);
      const tpsGrown = ((load.done() - before) * 1000) / (performance.now() - m0);
      await load.stop();
      const s0 = performance.now();
      let shrinkMs = -1;
      while (performance.now() < s0 + 30_000) {
        const now = size();
        if (now !== sizes[sizes.length - 1]!.size) sizes.push({ atMs: Math.round(performance.now() - t0), size: now });
        if (now <= 2) {
          shrinkMs = performance.now() - s0;
          break;
        }
        await sleep(20);
      }
      return { needed, sizes, rampMs: Math.round(rampMs), cycles: Math.ceil(rampMs / 1000), tpsFirstSecond, tpsGrown: Math.round(tpsGrown), shrinkMs: Math.round(shrinkMs), errors: load.errors() };
    } finally {
      board.close();
    }
  });
}

/** tx/s of echo with 8 callers, short and long connections, in one mode. */
async function modeTps(mode: 'FORK' | 'STATIC_WORKERPOOL'): Promise<{ short: number; long: number; longFirstCallMs: number; errors: number }> {
  return withPlatform(mode.toLowerCase(), { serverHosts: 1, workers: 8, mode }, async (c, env) => {
    const measure = async (once: (i: number) => Promise<void>): Promise<{ tps: number; errors: number }> => {
      const load = loadLoop(8, once);
      await sleep(500); // warm-up
      const before = load.done();
      const t0 = performance.now();
      await sleep(SECONDS * 1000);
      const tps = ((load.done() - before) * 1000) / (performance.now() - t0);
      await load.stop();
      return { tps, errors: load.errors() };
    };
    const short = await measure(async () => void (await env.call('ibp_test_echo', MSG)));
    const conns: IbacConnection[] = await Promise.all(Array.from({ length: 8 }, () => env.connect(c.serverNode)));
    // The first call on each connection (FORK: starts its process), then the steady state.
    const f0 = performance.now();
    await Promise.all(conns.map((x) => x.call('ibp_test_echo', MSG)));
    const longFirstCallMs = performance.now() - f0;
    const long = await measure(async (i) => void (await conns[i]!.call('ibp_test_echo', MSG)));
    await Promise.all(conns.map((x) => x.close()));
    return { short: Math.round(short.tps), long: Math.round(long.tps), longFirstCallMs: Math.round(longFirstCallMs), errors: short.errors + long.errors };
  });
}

async function main(): Promise<void> {
  console.log(`pool bench: node ${process.version}`);
  const dyn = await dynamicStep();
  console.log(`DYNAMIC_WORKERPOOL step load (6 callers × 20 ms, short connections; needs ${dyn.needed} workers; create_interval 2 per 1 s cycle):`);
  console.log(`  pool size: ${dyn.sizes.map((s) => `${s.size}@${(s.atMs / 1000).toFixed(1)}s`).join(' → ')}`);
  console.log(`  grown to ${dyn.needed} ready workers in ${dyn.rampMs} ms (${dyn.cycles} cycles); ${dyn.tpsFirstSecond} tx in the first second, ${dyn.tpsGrown} tx/s grown; back to max_idle_count ${dyn.shrinkMs} ms after the load stopped; ${dyn.errors} errors`);
  const stat = await modeTps('STATIC_WORKERPOOL');
  const fork = await modeTps('FORK');
  console.log(`echo, 8 callers, ${SECONDS} s each, max_count 8 (STATIC: 8 workers; FORK: at most 8 at once):`);
  console.log(`  STATIC_WORKERPOOL  short ${String(stat.short).padStart(6)} tx/s   long ${String(stat.long).padStart(6)} tx/s (first call on 8 new connections: ${stat.longFirstCallMs} ms)   ${stat.errors} errors`);
  console.log(`  FORK               short ${String(fork.short).padStart(6)} tx/s   long ${String(fork.long).padStart(6)} tx/s (first call on 8 new connections: ${fork.longFirstCallMs} ms)   ${fork.errors} errors`);
  const summary = {
    bench: 'pool',
    dynamic_needed: dyn.needed,
    dynamic_sizes: dyn.sizes.map((s) => s.size),
    dynamic_ramp_ms: dyn.rampMs,
    dynamic_cycles: dyn.cycles,
    dynamic_tx_first_second: dyn.tpsFirstSecond,
    dynamic_tps_grown: dyn.tpsGrown,
    dynamic_shrink_ms: dyn.shrinkMs,
    static_short_tps: stat.short,
    fork_short_tps: fork.short,
    fork_short_ratio: +(fork.short / stat.short).toFixed(3),
    static_long_tps: stat.long,
    fork_long_tps: fork.long,
    fork_long_ratio: +(fork.long / stat.long).toFixed(3),
    static_long_first_call_ms: stat.longFirstCallMs,
    fork_long_first_call_ms: fork.longFirstCallMs,
    errors: dyn.errors + stat.errors + fork.errors,
  };
  console.log(`FORK ÷ STATIC: short connections ${summary.fork_short_ratio}, long connections ${summary.fork_long_ratio}`);
  console.log(JSON.stringify(summary));
}

await main();
