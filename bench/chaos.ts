/**
 * `npm run bench:chaos` — 32 callers on long connections call a platform (STATIC_WORKERPOOL, 4 workers) while a
 * random worker is killed with SIGKILL every 100 ms for `--seconds` (default 30). Only the transactions the killed
 * workers had taken may fail, and those only as in doubt (ON_SENDING): every other failure is counted in
 * `failed_otherwise`, which must be 0. After the last kill, `recovery_ms` is how long until the pool is whole
 * again (every worker ready: idle or busy on the bulletin board).
 * Options: --seconds N (default 30), --workers N (default 4), --callers N (default 32), --kill-every MS (default 100).
 * Prints a human summary and, as its last line, one JSON object. IBP_BENCH_KEEP=1 keeps the scratch homes (logs).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbacEnv, IbpError, type IbacConnection } from '../src/client/index.js';
import { boardPathOf, BoardReader } from '../src/platform/index.js';
import { removeScratch, startPlatform, stopPlatform, writeScratchCluster } from '../src/cli/scratch-cluster.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!(v > 0)) throw new Error(`--${name} ${process.argv[i + 1]}: expected a number > 0`);
  return v;
}
const SECONDS = arg('seconds', 30);
const WORKERS = arg('workers', 4);
const CALLERS = arg('callers', 32);
const KILL_EVERY_MS = arg('kill-every', 100);
const MSG = Buffer.alloc(100, 'c');

async function main(): Promise<void> {
  const base = join(tmpdir(), `ibp-bench-chaos-${process.pid}`);
  const cluster = await writeScratchCluster({ base, serverHosts: 1, workers: WORKERS });
  const platform = await startPlatform(cluster.serverHomes[0]!);
  const env = await IbacEnv.create({ home: cluster.clientHome });
  const board = new BoardReader(boardPathOf(cluster.serverHomes[0]!, '127.0.0.1', cluster.ports[0]!));
  const whole = (): boolean => {
    const v = board.view();
    return v.slots.filter((s) => s.state === 'idle' || s.state === 'busy').length === WORKERS && !v.slots.some((s) => s.state === 'starting');
  };
  let completed = 0;
  let inDoubt = 0;
  let otherwise = 0;
  const otherKinds = new Map<string, number>();
  let kills = 0;
  let killMisses = 0;
  try {
    console.log(`chaos bench: ${CALLERS} long-connection callers, ${WORKERS} workers, SIGKILL to a random worker every ${KILL_EVERY_MS} ms for ${SECONDS} s`);
    const conns: IbacConnection[] = await Promise.all(Array.from({ length: CALLERS }, () => env.connect(cluster.serverNode)));
    let running = true;
    const callers = conns.map(async (conn) => {
      while (running) {
        try {
          await conn.call('ibp_test_echo', MSG);
          completed++;
        } catch (err) {
          const e = err instanceof IbpError ? err : undefined;
          if (e?.commStatus === 'ON_SENDING') inDoubt++;
          else {
            otherwise++;
            const kind = `${e?.code ?? 'non-IbpError'}/${e?.commStatus ?? '-'}: ${(err as Error).message.slice(0, 120)}`;
            otherKinds.set(kind, (otherKinds.get(kind) ?? 0) + 1);
          }
        }
      }
    });
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    let lastKillAt = t0;
    while (performance.now() < end) {
      const live = board.view().slots.filter((s) => (s.state === 'idle' || s.state === 'busy') && s.pid > 0);
      const victim = live[Math.floor(Math.random() * live.length)];
      if (victim) {
        try {
          process.kill(victim.pid, 'SIGKILL');
          kills++;
          lastKillAt = performance.now();
        } catch {
          killMisses++; // it exited meanwhile
        }
      } else killMisses++;
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
    }
    const chaosMs = performance.now() - t0;
    // Recovery: how long after the last kill until every worker is back (polled every 5 ms, 60 s at most).
    const recoverBy = lastKillAt + 60_000;
    while (!whole() && performance.now() < recoverBy) await new Promise((r) => setTimeout(r, 5));
    const recoveryMs = whole() ? performance.now() - lastKillAt : -1;
    // Keep calling a little after recovery: the pool serves normally again.
    const before = completed;
    await new Promise((r) => setTimeout(r, 1000));
    const afterRecovery = completed - before;
    running = false;
    await Promise.all(callers);
    await Promise.all(conns.map((c) => c.close()));
    const summary = {
      bench: 'chaos',
      seconds: SECONDS,
      workers: WORKERS,
      callers: CALLERS,
      kills,
      completed,
      failed_in_doubt: inDoubt,
      failed_otherwise: otherwise,
      recovery_ms: Math.round(recoveryMs),
      tx_per_s_under_chaos: Math.round(completed / (chaosMs / 1000)),
      tx_in_1s_after_recovery: afterRecovery,
    };
    console.log(`${kills} workers killed (${killMisses} misses) in ${(chaosMs / 1000).toFixed(1)} s; ${completed} calls completed, ${inDoubt} failed in doubt (the killed workers' own), ${otherwise} failed otherwise`);
    for (const [kind, n] of otherKinds) console.log(`  failed otherwise ×${n}: ${kind}`);
    console.log(`pool whole again ${summary.recovery_ms} ms after the last kill; ${afterRecovery} calls in the next second`);
    console.log(JSON.stringify(summary));
  } finally {
    board.close();
    await env.close();
    await stopPlatform(platform);
    if (!process.env.IBP_BENCH_KEEP) removeScratch(base);
    else console.log(`kept ${base}`);
  }
}

await main();
