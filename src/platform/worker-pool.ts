/**
 * The ibas master's pool (STATIC_WORKERPOOL, features #48/#49/#52): the master owns the listen socket, accepts,
 * and hands each new connection to an IDLE worker only (one not running a transaction), read from the bulletin
 * board; with none idle the connection waits in a bounded queue (count and time). Workers that die are replaced
 * at once (with a growing delay for workers that die right after start); a recycled worker is replaced as soon as
 * it says it retires. The master also runs the 2nd and 3rd timeout layers: SIGTERM at 1.5T, SIGKILL at 2T.
 *
 * Why the master accepts (DESIGN §7): in Node a process holding a listening copy always polls it, so an "only
 * idle workers accept" rule cannot be kept by sharing the socket; handing over each connection costs master CPU on
 * short connections and nothing on long ones. See docs/platform.md for the measurement.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { IbpError } from '../core/errors.js';
import { BoardReader, createBoard } from './bulletin-board.js';
import { isWorkerMessage, type MasterMessage, type WorkerMessage } from './ipc.js';
import type { PlatformSettings } from './settings.js';

const WORKER_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'worker-main.js');
const QUEUE_POLL_MS = 2;
const TIMEOUT_SCAN_MS = 250;
const QUICK_CRASH_MS = 2000;
const STOP_GRACE_MS = 60_000;

type PoolState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

interface WorkerRecord {
  child: ChildProcess;
  index: number;
  slot: number;
  pid: number;
  startedAt: number;
  ready: boolean;
  retiring: boolean;
  termSent: boolean;
  exited: Promise<void>;
}

interface Waiting {
  socket: Socket;
  since: number;
}

export interface WorkerPoolOptions {
  settings: PlatformSettings;
  log: Logger;
  /** Spawned worker's extra environment. */
  env?: NodeJS.ProcessEnv;
}

export class WorkerPool {
  #s: PlatformSettings;
  #log: Logger;
  #env: NodeJS.ProcessEnv;
  #state: PoolState = 'new';
  #server: Server | undefined;
  #board!: BoardReader;
  #workers = new Map<number, WorkerRecord>(); // by slot
  #queue: Waiting[] = [];
  #queueTimer: NodeJS.Timeout | undefined;
  #scanTimer: NodeJS.Timeout | undefined;
  #rotor = 0;
  #quickCrashes = 0;
  #restartTimers = new Set<NodeJS.Timeout>();
  #stopped: Promise<void> | undefined;

  constructor(o: WorkerPoolOptions) {
    this.#s = o.settings;
    this.#log = o.log;
    this.#env = o.env ?? process.env;
  }

  get state(): PoolState {
    return this.#state;
  }

  get address(): { ip: string; port: number } {
    const a = this.#server?.address();
    if (a && typeof a === 'object') return { ip: a.address, port: a.port };
    return { ip: this.#s.ip, port: this.#s.port };
  }

  /** Binds the listen address, fills the pool and resolves when every worker is ready. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`pool already ${this.#state}`);
    this.#state = 'starting';
    if (this.#s.mode !== 'STATIC_WORKERPOOL') {
      this.#log.warn({ mode: this.#s.mode }, `ibas.mpm.mode ${this.#s.mode} is not implemented yet: running a static pool of max_count workers`);
    }
    createBoard(this.#s.boardPath, this.#s.maxCount * 2, process.pid);
    this.#board = new BoardReader(this.#s.boardPath);
    const server = createServer({ pauseOnConnect: true, noDelay: true });
    server.on('connection', (socket) => this.#onConnection(socket));
    server.on('error', (err) => this.#log.error({ err }, 'listen socket error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new IbpError('IBP_ERR_PLATFORM_LISTEN', `cannot listen on ${this.#s.ip}:${this.#s.port}: ${err.message}`, { cause: err })),
      );
      server.listen({ host: this.#s.ip, port: this.#s.port, backlog: 1024 }, () => resolve());
    });
    this.#server = server;
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.#s.maxCount; i++) ready.push(this.#spawn(i + 1));
    await Promise.all(ready);
    this.#scanTimer = setInterval(() => this.#scanTimeouts(), TIMEOUT_SCAN_MS);
    this.#scanTimer.unref();
    this.#state = 'running';
    this.#log.info({ ip: this.address.ip, port: this.address.port, workers: this.#s.maxCount }, 'pool ready');
  }

  #freeSlot(): number {
    for (let s = 0; s < this.#board.slots; s++) if (!this.#workers.has(s)) return s;
    throw new Error('no free bulletin-board slot');
  }

  /** Starts the worker with this index; resolves when it is ready (rejects if it dies first). */
  #spawn(index: number): Promise<void> {
    const slot = this.#freeSlot();
    const child = fork(WORKER_MAIN, [], {
      env: { ...this.#env, IBP_HOME: this.#s.homeRoot, IBP_WORKER: JSON.stringify({ settings: this.#s, index, slot }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
      // IBP_WORKER_NODE_ARGS: extra node options for workers (e.g. --max-old-space-size=512, --cpu-prof).
      execArgv: (this.#env.IBP_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
    });
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    const rec: WorkerRecord = {
      child,
      index,
      slot,
      pid: child.pid ?? 0,
      startedAt: Date.now(),
      ready: false,
      retiring: false,
      termSent: false,
      exited: new Promise<void>((res) => child.once('exit', () => res())),
    };
    this.#workers.set(slot, rec);
    child.on('message', (m: unknown) => {
      if (!isWorkerMessage(m)) return;
      this.#onWorkerMessage(rec, m);
      if (m.type === 'ready') onReady();
    });
    child.once('exit', (code, signal) => {
      if (!rec.ready) onFail(new IbpError('IBP_ERR_PLATFORM_START', `worker ${index} exited before ready (code ${code}, signal ${signal})`));
      this.#onExit(rec, code, signal);
    });
    child.on('error', (err) => this.#log.error({ err, index }, 'worker process error'));
    return ready;
  }

  #onWorkerMessage(rec: WorkerRecord, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        rec.ready = true;
        this.#drainQueue();
        break;
      case 'idle':
        this.#drainQueue();
        break;
      case 'retiring':
        if (!rec.retiring) {
          rec.retiring = true;
          this.#log.info({ index: rec.index, pid: rec.pid, reason: m.reason }, 'worker retiring');
          if (m.reason === 'recycle' && this.#state === 'running') this.#replace(rec.index, 0);
        }
        break;
      case 'fatal':
        this.#log.error({ index: rec.index, pid: rec.pid, error: m.error }, 'worker reported a fatal error');
        break;
    }
  }

  #onExit(rec: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    this.#workers.delete(rec.slot);
    this.#board.clearSlot(rec.slot);
    if (this.#state !== 'running' && this.#state !== 'starting') return;
    if (rec.retiring) {
      this.#log.info({ index: rec.index, pid: rec.pid, code }, 'worker exited after retiring');
      return; // its replacement was started when it announced it
    }
    const quick = Date.now() - rec.startedAt < QUICK_CRASH_MS;
    this.#quickCrashes = quick ? this.#quickCrashes + 1 : 0;
    const delay = quick ? Math.min(100 * 2 ** (this.#quickCrashes - 1), 10_000) : 0;
    this.#log.warn({ index: rec.index, pid: rec.pid, code, signal, restartInMs: delay }, 'worker died; replacing it');
    if (this.#state === 'running') this.#replace(rec.index, delay);
  }

  #replace(index: number, delayMs: number): void {
    const go = (): void => {
      if (this.#state !== 'running') return;
      this.#spawn(index).catch((err) => this.#log.error({ err, index }, 'replacement worker failed to start'));
    };
    if (delayMs <= 0) go();
    else {
      const t = setTimeout(() => {
        this.#restartTimers.delete(t);
        go();
      }, delayMs);
      this.#restartTimers.add(t);
    }
  }

  #onConnection(socket: Socket): void {
    if (this.#state !== 'running') {
      socket.destroy();
      return;
    }
    socket.on('error', () => socket.destroy());
    if (this.#queue.length === 0 && this.#dispatch(socket)) return;
    if (this.#queue.length >= this.#s.acceptQueueCount) {
      this.#log.warn({ queued: this.#queue.length }, 'accept queue full; closing a new connection');
      socket.destroy();
      return;
    }
    this.#queue.push({ socket, since: Date.now() });
    this.#board.setWaiting(true);
    if (!this.#queueTimer) {
      this.#queueTimer = setInterval(() => this.#drainQueue(), QUEUE_POLL_MS);
    }
  }

  /** Hands `socket` to an idle worker; false when none is idle. */
  #dispatch(socket: Socket): boolean {
    this.#board.refresh();
    let best: WorkerRecord | undefined;
    let bestConns = Infinity;
    const n = this.#board.slots;
    for (let k = 0; k < n; k++) {
      const slot = (this.#rotor + k) % n;
      const w = this.#workers.get(slot);
      if (!w || !w.ready || w.retiring || !w.child.connected) continue;
      if (this.#board.stateOf(slot) !== 'idle') continue;
      const conns = this.#board.connectionsOf(slot);
      if (conns < bestConns) {
        best = w;
        bestConns = conns;
        if (conns === 0) break;
      }
    }
    if (!best) return false;
    this.#rotor = (best.slot + 1) % n;
    const msg: MasterMessage = { type: 'conn' };
    best.child.send(msg, socket, (err) => {
      if (err) {
        this.#log.warn({ err, index: best!.index }, 'handing a connection to a worker failed');
        socket.destroy();
      }
    });
    return true;
  }

  #drainQueue(): void {
    const now = Date.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.socket.destroyed) {
        this.#queue.shift();
        continue;
      }
      if (now - head.since > this.#s.acceptQueueTimeoutMs) {
        this.#queue.shift();
        this.#log.warn({ waitedMs: now - head.since }, 'no idle worker within accept_queue_timeout; closing the connection');
        head.socket.destroy();
        continue;
      }
      if (!this.#dispatch(head.socket)) break;
      this.#queue.shift();
    }
    if (this.#queue.length === 0 && this.#queueTimer) {
      clearInterval(this.#queueTimer);
      this.#queueTimer = undefined;
      this.#board.setWaiting(false);
    }
  }

  /** Timeout layers 2 and 3: SIGTERM past 1.5T, SIGKILL past 2T (T = the deadline the worker wrote). */
  #scanTimeouts(): void {
    this.#board.refresh();
    const now = Date.now();
    for (const [slot, w] of this.#workers) {
      if (this.#board.stateOf(slot) !== 'busy') continue;
      const since = this.#board.sinceOf(slot);
      const deadline = this.#board.deadlineOf(slot);
      if (deadline <= 0 || this.#board.pidOf(slot) !== w.pid) continue;
      const t = deadline - since;
      const elapsed = now - since;
      if (elapsed > 2 * t) {
        this.#log.error({ index: w.index, pid: w.pid, elapsedMs: elapsed }, 'transaction past 2T: SIGKILL');
        w.child.kill('SIGKILL');
      } else if (elapsed > 1.5 * t && !w.termSent) {
        w.termSent = true;
        this.#log.error({ index: w.index, pid: w.pid, elapsedMs: elapsed }, 'transaction past 1.5T: SIGTERM');
        w.child.kill('SIGTERM');
      }
    }
  }

  /** Sends a signal to every live worker (SIGUSR1: reopen log files). */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const w of this.#workers.values()) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  }

  /** Bulletin board snapshot for status commands. */
  workers(): { index: number; pid: number; slot: number; ready: boolean; retiring: boolean }[] {
    return [...this.#workers.values()].map((w) => ({ index: w.index, pid: w.pid, slot: w.slot, ready: w.ready, retiring: w.retiring }));
  }

  /**
   * Graceful stop: no new connections; every worker finishes its in-flight transactions, moves its connections
   * on, and exits; workers still alive after the grace period are killed.
   */
  stop(graceMs: number = STOP_GRACE_MS): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopped = (async () => {
      this.#state = 'stopping';
      for (const t of this.#restartTimers) clearTimeout(t);
      if (this.#queueTimer) clearInterval(this.#queueTimer);
      if (this.#scanTimer) clearInterval(this.#scanTimer);
      for (const q of this.#queue) q.socket.destroy();
      this.#queue = [];
      const closed = this.#server ? new Promise<void>((r) => this.#server!.close(() => r())) : Promise.resolve();
      const all = [...this.#workers.values()];
      for (const w of all) {
        const msg: MasterMessage = { type: 'stop' };
        if (w.child.connected) w.child.send(msg);
        else w.child.kill('SIGTERM');
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(all.map((w) => w.exited)),
        new Promise<void>((r) => {
          timer = setTimeout(r, graceMs);
        }),
      ]);
      if (timer) clearTimeout(timer);
      for (const w of all) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all(all.map((w) => w.exited));
      await closed;
      this.#board.close();
      this.#state = 'stopped';
      this.#log.info('pool stopped');
    })();
    return this.#stopped;
  }
}
