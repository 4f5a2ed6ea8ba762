/**
 * `npm run bench:upgrade` — zero-downtime platform upgrade under load: a daemonized platform (STATIC_WORKERPOOL,
 * 2 workers) serves echo calls from 16 callers on long connections and 16 on short ones (connect-call-close) while
 * it gets SIGUSR2 three times, each after the previous switch has finished and the load has settled.
 *
 * Prints, per upgrade, how long the switch took (SIGUSR2 to the master → the old generation gone) and the lowest 1-second throughput
 * around it; then, as the last line, one JSON object: `completed`, `failed`, `refused` (connections not accepted:
 * connect failed, host suspended, or closed before an answer), `dip_ratio` (lowest 1-second throughput during a
 * switch ÷ the steady state measured before the first one, in the same run) and the figures behind it.
 * Options: --long N, --short N (callers, default 16 each), --settle S (seconds between upgrades, default 3).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbacEnv, type IbacConnection, type IbpError } from '../src/client/index.js';
import { EXAMPLE_APPS, removeScratch, runCliSync, writeScratchCluster } from '../src/cli/scratch-cluster.js';
import { ibasMasterStatus, isProcessAlive, pidPathOf, runningPid, servingGenerationPid } from '../src/platform/index.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const LONG = arg('long', 16);
const SHORT = arg('short', 16);
const SETTLE_S = arg('settle', 3);
const BASELINE_S = 3;
const UPGRADES = 3;
const WORKERS = 2;
const BUCKET_MS = 100;
const MSG = Buffer.alloc(100, 'x');
/** Failures that mean the platform did not take the connection. */
const REFUSED = new Set(['IBP_ERR_CLIENT_CONNECT_FAILED', 'IBP_ERR_CLIENT_CONNECT_TIMEOUT', 'IBP_ERR_CLIENT_NO_HOST']);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Switch {
  from: number;
  to: number;
  signalAt: number;
  readyAt: number;
  oldGoneAt: number;
}

async function main(): Promise<void> {
  const base = join(tmpdir(), `ibp-bench-upgrade-${process.pid}`);
  const cluster = await writeScratchCluster({ base, serverHosts: 1, workers: WORKERS, apps: EXAMPLE_APPS });
  const home = cluster.serverHomes[0]!;
  const pidPath = pidPathOf(home, '127.0.0.1', cluster.ports[0]!);
  runCliSync('ibas', ['-a', 'start'], home);
  const env = await IbacEnv.create({ home: cluster.clientHome });
  const t0 = performance.now();
  const buckets: number[] = [];
  const errors = new Map<string, number>();
  let completed = 0;
  let failed = 0;
  let refused = 0;
  let stop = false;
  const record = async (call: () => Promise<unknown>): Promise<void> => {
    try {
      await call();
      completed++;
      const b = Math.floor((performance.now() - t0) / BUCKET_MS);
      buckets[b] = (buckets[b] ?? 0) + 1;
    } catch (err) {
      failed++;
      const e = err as IbpError;
      if (REFUSED.has(e.code) || (e.code === 'IBP_ERR_CLIENT_CONNECTION_LOST' && e.commStatus === 'NOT_SENT')) refused++;
      const key = `${e.code}/${e.commStatus}`;
      errors.set(key, (errors.get(key) ?? 0) + 1);
      if (failed <= 5) console.error(`call failed: ${key}: ${e.message}`);
    }
  };
  const conns: IbacConnection[] = await Promise.all(Array.from({ length: LONG }, () => env.connect(cluster.serverNode)));
  const loops = [
    ...conns.map(async (c) => {
      while (!stop) await record(() => c.call('ibp_test_echo', MSG));
    }),
    ...Array.from({ length: SHORT }, async () => {
      while (!stop) await record(() => env.call('ibp_test_echo', MSG));
    }),
  ];
  const now = (): number => performance.now() - t0;
  const switches: Switch[] = [];
  try {
    console.log(`upgrade bench: ${WORKERS} workers, ${LONG} long + ${SHORT} short callers, ${MSG.length}-byte echo, ${UPGRADES} × SIGUSR2, node ${process.version}`);
    await sleep(500); // warm-up
    const baseFrom = now();
    await sleep(BASELINE_S * 1000);
    const baseTo = now();
    const master = runningPid(pidPath)!;
    const generation = async (): Promise<number | undefined> => servingGenerationPid(await ibasMasterStatus({ pidPath }));
    for (let i = 0; i < UPGRADES; i++) {
      // SIGUSR2 to the master (it keeps the socket); the generations under it are what changes.
      const from = (await generation())!;
      const signalAt = now();
      process.kill(master, 'SIGUSR2');
      let to: number | undefined;
      while (to === undefined || to === from) {
        if (now() - signalAt > 120_000) throw new Error(`upgrade ${i + 1}: no new generation within 120 s`);
        await sleep(10);
        to = await generation();
      }
      const readyAt = now();
      while (isProcessAlive(from)) {
        if (now() - signalAt > 240_000) throw new Error(`upgrade ${i + 1}: the old generation did not exit`);
        await sleep(10);
      }
      switches.push({ from, to, signalAt, readyAt, oldGoneAt: now() });
      await sleep(SETTLE_S * 1000);
    }
    stop = true;
    await Promise.all(loops);
    const count = (fromMs: number, toMs: number): number => {
      let n = 0;
      for (let b = Math.floor(fromMs / BUCKET_MS); b < Math.floor(toMs / BUCKET_MS); b++) n += buckets[b] ?? 0;
      return n;
    };
    const steady = count(baseFrom, baseTo) / ((baseTo - baseFrom) / 1000);
    // Lowest 1-second throughput in windows that overlap a switch (from SIGUSR2 to one second after the old exits).
    // Split in two phases: the new generation starting (its processes compete for CPU with the load) and the
    // hand-over (the old generation stops accepting and moves its connections on).
    const lowestIn = (fromMs: number, toMs: number): number => {
      let low = Infinity;
      for (let w = fromMs - 900; w <= toMs; w += BUCKET_MS) low = Math.min(low, count(w, w + 1000));
      return low;
    };
    let lowest = Infinity;
    for (const [i, s] of switches.entries()) {
      const lowStart = lowestIn(s.signalAt, s.readyAt);
      const lowHandOver = lowestIn(s.readyAt, s.oldGoneAt + 1000);
      lowest = Math.min(lowest, lowStart, lowHandOver);
      console.log(
        `upgrade ${i + 1}: pid ${s.from} → ${s.to}; new generation ready ${((s.readyAt - s.signalAt) / 1000).toFixed(2)} s after SIGUSR2, ` +
          `old one gone after ${((s.oldGoneAt - s.signalAt) / 1000).toFixed(2)} s; lowest 1-s throughput while starting ${lowStart} tx/s ` +
          `(${(lowStart / steady).toFixed(2)} of steady), during the hand-over ${lowHandOver} tx/s (${(lowHandOver / steady).toFixed(2)})`,
      );
    }
    const summary = {
      completed,
      failed,
      refused,
      dip_ratio: +(lowest / steady).toFixed(3),
      steady_tps: Math.round(steady),
      lowest_tps: lowest,
      upgrades: switches.length,
      errors: Object.fromEntries(errors),
    };
    console.log(
      `steady ${summary.steady_tps} tx/s; ${completed} calls completed, ${failed} failed, ${refused} refused over ${UPGRADES} upgrades; ` +
        `lowest 1-s throughput during a switch ${lowest} tx/s = ${summary.dip_ratio} of steady`,
    );
    console.log(JSON.stringify(summary));
  } finally {
    stop = true;
    await Promise.all(loops);
    await env.close();
    try {
      runCliSync('ibas', ['-a', 'stop'], home);
    } catch (err) {
      console.error((err as Error).message);
    }
    removeScratch(base);
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
