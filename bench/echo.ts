/**
 * `npm run bench:echo` — echo transactions client → IB2 → platform (2 workers) → app → back, 100-byte messages,
 * against a raw Node.js TCP length-prefixed echo server with 2 worker processes, in the same run:
 *   long1   1 caller on a long connection
 *   long32  32 callers, each on its own long connection
 *   short32 32 callers, connect-call-close per transaction
 *   work1ms 32 callers on long connections, an app that works 1 ms synchronously: tx/s ÷ (workers × 1000)
 * Also the raw server with the primary handing over every connection (SCHED_RR), to show what the ibas
 * master's hand-over costs on short connections (DESIGN §7).
 * Prints tx/s, p50, p99 for each, and as the last line one JSON object with long1_ratio, long32_ratio,
 * short32_ratio (ours ÷ raw) and pool_efficiency. Options: --seconds N (per scenario, default 3).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbacEnv, type IbacConnection } from '../src/client/index.js';
import { EXAMPLE_APPS, REPO_ROOT, removeScratch, startPlatform, stopPlatform, writeScratchCluster } from '../src/cli/scratch-cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const secIdx = process.argv.indexOf('--seconds');
const SECONDS = secIdx > 0 ? Number(process.argv[secIdx + 1]) : 3;
const WORKERS = 2;
const MSG = Buffer.alloc(100, 'x');

interface Result {
  name: string;
  tps: number;
  p50: number;
  p99: number;
  count: number;
  errors: number;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `callers` loops of `once()` for SECONDS; returns tx/s and latency percentiles. */
async function load(name: string, callers: number, once: (i: number) => Promise<void>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const warmEnd = performance.now() + 300;
  const loops: Promise<void>[] = [];
  let measuring = false;
  let stopAt = Infinity;
  let count = 0;
  for (let i = 0; i < callers; i++) {
    loops.push(
      (async () => {
        while (performance.now() < stopAt) {
          const t0 = performance.now();
          try {
            await once(i);
            if (measuring) {
              lat.push(performance.now() - t0);
              count++;
            }
          } catch (err) {
            errors++;
            if (errors < 5) console.error(`${name}: ${(err as Error).message}`);
          }
        }
      })(),
    );
  }
  await new Promise((r) => setTimeout(r, Math.max(0, warmEnd - performance.now())));
  measuring = true;
  const t0 = performance.now();
  stopAt = t0 + SECONDS * 1000;
  await Promise.all(loops);
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { name, tps: count / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), count, errors };
}

function print(r: Result): void {
  console.log(`${r.name.padEnd(16)} ${r.tps.toFixed(0).padStart(8)} tx/s   p50 ${r.p50.toFixed(3)} ms   p99 ${r.p99.toFixed(3)} ms   (${r.count} tx, ${r.errors} errors)`);
}

// ---- raw baseline client: u32 BE length + payload
class RawConn {
  #s: Socket;
  #buf = Buffer.alloc(0);
  #waiter: ((b: Buffer) => void) | undefined;
  private constructor(s: Socket) {
    this.#s = s;
    s.setNoDelay(true);
    s.on('data', (c) => {
      this.#buf = this.#buf.length === 0 ? c : Buffer.concat([this.#buf, c]);
      if (this.#buf.length >= 4) {
        const len = this.#buf.readUInt32BE(0);
        if (this.#buf.length >= 4 + len) {
          const body = this.#buf.subarray(4, 4 + len);
          this.#buf = this.#buf.subarray(4 + len);
          const w = this.#waiter;
          this.#waiter = undefined;
          w?.(body);
        }
      }
    });
  }
  static open(port: number): Promise<RawConn> {
    return new Promise((res, rej) => {
      const s = connect({ host: '127.0.0.1', port }, () => res(new RawConn(s)));
      s.once('error', rej);
    });
  }
  call(msg: Buffer): Promise<Buffer> {
    return new Promise((res) => {
      this.#waiter = res;
      const head = Buffer.alloc(4);
      head.writeUInt32BE(msg.length, 0);
      this.#s.cork();
      this.#s.write(head);
      this.#s.write(msg);
      this.#s.uncork();
    });
  }
  close(): Promise<void> {
    return new Promise((res) => {
      this.#s.once('close', () => res());
      this.#s.end();
    });
  }
}

function startRaw(rr = false): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [join(here, 'raw-echo-server.js'), String(WORKERS), '0', rr ? 'rr' : 'none'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) res({ child, port: Number(m[1]) });
    });
    child.once('exit', (c) => rej(new Error(`raw server exited ${c}`)));
  });
}

async function main(): Promise<void> {
  const base = join(tmpdir(), `ibp-bench-echo-${process.pid}`);
  const apps = [...EXAMPLE_APPS, { app: 'ibp_bench_work1ms', source: join(REPO_ROOT, 'bench', 'apps', 'ibp_bench_work1ms.mjs') }];
  const cluster = await writeScratchCluster({ base, serverHosts: 1, workers: WORKERS, apps });
  const platform = await startPlatform(cluster.serverHomes[0]!);
  const raw = await startRaw();
  const env = await IbacEnv.create({ home: cluster.clientHome });
  const results: Record<string, Result> = {};
  try {
    console.log(`echo bench: ${WORKERS} workers, ${MSG.length}-byte messages, ${SECONDS} s per scenario, node ${process.version}`);
    // ours
    const longConns = async (n: number): Promise<IbacConnection[]> => Promise.all(Array.from({ length: n }, () => env.connect(cluster.serverNode)));
    let conns = await longConns(1);
    results.long1 = await load('ibp long1', 1, async () => void (await conns[0]!.call('ibp_test_echo', MSG)));
    await Promise.all(conns.map((c) => c.close()));
    conns = await longConns(32);
    results.long32 = await load('ibp long32', 32, async (i) => void (await conns[i]!.call('ibp_test_echo', MSG)));
    await Promise.all(conns.map((c) => c.close()));
    results.short32 = await load('ibp short32', 32, async () => void (await env.call('ibp_test_echo', MSG)));
    conns = await longConns(32);
    results.work1ms = await load('ibp work1ms32', 32, async (i) => void (await conns[i]!.call('ibp_bench_work1ms', MSG)));
    await Promise.all(conns.map((c) => c.close()));
    // raw
    let rc = [await RawConn.open(raw.port)];
    results.rawLong1 = await load('raw long1', 1, async () => void (await rc[0]!.call(MSG)));
    await Promise.all(rc.map((c) => c.close()));
    rc = await Promise.all(Array.from({ length: 32 }, () => RawConn.open(raw.port)));
    results.rawLong32 = await load('raw long32', 32, async (i) => void (await rc[i]!.call(MSG)));
    await Promise.all(rc.map((c) => c.close()));
    results.rawShort32 = await load('raw short32', 32, async () => {
      const c = await RawConn.open(raw.port);
      await c.call(MSG);
      await c.close();
    });
    // DESIGN §7: what a master that accepts and hands each connection over costs on short connections.
    const rawRr = await startRaw(true);
    try {
      results.rawShort32Rr = await load('raw short32 RR', 32, async () => {
        const c = await RawConn.open(rawRr.port);
        await c.call(MSG);
        await c.close();
      });
    } finally {
      rawRr.child.kill('SIGTERM');
    }
    for (const r of Object.values(results)) print(r);
    const summary = {
      long1_ratio: +(results.long1.tps / results.rawLong1.tps).toFixed(3),
      long32_ratio: +(results.long32.tps / results.rawLong32.tps).toFixed(3),
      short32_ratio: +(results.short32.tps / results.rawShort32.tps).toFixed(3),
      pool_efficiency: +(results.work1ms.tps / (WORKERS * 1000)).toFixed(3),
    };
    console.log(`master hand-over (SCHED_RR) vs workers accepting (SCHED_NONE), raw short32: ${(results.rawShort32Rr.tps / results.rawShort32.tps).toFixed(3)}`);
    console.log(`ratios ours/raw: long1 ${summary.long1_ratio}, long32 ${summary.long32_ratio}, short32 ${summary.short32_ratio}; pool efficiency ${summary.pool_efficiency}`);
    console.log(JSON.stringify(summary));
  } finally {
    await env.close();
    raw.child.kill('SIGTERM');
    await stopPlatform(platform);
    removeScratch(base);
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
