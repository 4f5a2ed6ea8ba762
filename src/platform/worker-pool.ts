/**
 * The ibas master's pool, in the three modes of `ibas.mpm.mode` (features #48–#52):
 *
 * - `STATIC_WORKERPOOL`: `max_count` workers, each replaced when it dies or is recycled.
 * - `DYNAMIC_WORKERPOOL`: starts with `min_idle_count` workers; once per adjustment cycle (`adjust_interval`)
 *   grows or shrinks by the rule in pool-sizer.ts, between `min_idle_count` and `max_idle_count` idle workers,
 *   at most `create_interval` / `destroy_interval` per cycle, never past `max_count`.
 * - `FORK`: no worker waits; each connection gets a freshly forked worker, which serves that one connection
 *   and exits when it closes (at most `max_count` at once).
 *
 * In every mode the master owns the listen socket, accepts, and hands each connection to an IDLE worker only
 * (one not running a transaction; FORK: a fresh one), read from the bulletin board; with none idle the connection
 * waits in the bounded accept queue (and a dynamic pool grows, a FORK master forks). Workers that die are
 * replaced at once (with a growing delay for workers that die right after start). The master also runs the 2nd
 * and 3rd timeout layers (SIGTERM at 1.5T, SIGKILL at 2T) and writes the per-app statistics file.
 *
 * Why the master accepts (DESIGN §7): in Node a process holding a listening copy always polls it, so an "only
 * idle workers accept" rule cannot be kept by sharing the socket; handing over each connection costs master CPU on
 * short connections and nothing on long ones. See docs/platform.md for the measurement.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, Socket, type Server, type SocketConstructorOpts } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { IbpError } from '../core/errors.js';
import { AcceptQueue } from './accept-queue.js';
import { AppStatsTable } from './app-stats.js';
import { BoardReader, createBoard } from './bulletin-board.js';
import { isWorkerMessage, type MasterMessage, type WorkerMessage } from './ipc.js';
import { initialDynamicCount, planAdjustment, type PoolCounts } from './pool-sizer.js';
import type { PlatformSettings } from './settings.js';

const WORKER_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'worker-main.js');
const TIMEOUT_SCAN_MS = 250;
const STATS_WRITE_MS = 1000;
const QUICK_CRASH_MS = 2000;
const STOP_GRACE_MS = 60_000;
/**
 * A worker just handed a connection is not idle for the next one until it has finished a transaction (its board
 * count moved) or this long passed: the client's first request is still on its way, and a connection given to it
 * meanwhile would wait inside that worker instead of in the accept queue for whichever worker frees first.
 */
const CLAIM_MS = 100;

/** The parts of Node's IPC channel (lib/internal/child_process.js) that hold handles not yet acknowledged. */
interface NodeInternalChannel {
  _pendingMessage?: { handle?: unknown } | null;
  _handleQueue?: { handle?: unknown }[] | null;
}

type PoolState = 'new' | 'starting' | 'running' | 'draining' | 'stopping' | 'stopped';

interface WorkerRecord {
  child: ChildProcess;
  index: number;
  slot: number;
  pid: number;
  startedAt: number;
  ready: boolean;
  retiring: boolean;
  /** FORK: this worker has been given its one connection. */
  assigned: boolean;
  /** Claimed by a hand-over until `claimUntil` (epoch ms) unless its transaction count moves past `claimTx`. */
  claimUntil: number;
  claimTx: number;
  termSent: boolean;
  exited: Promise<void>;
}

export interface WorkerPoolOptions {
  settings: PlatformSettings;
  log: Logger;
  /** Spawned worker's extra environment. */
  env?: NodeJS.ProcessEnv;
  /**
   * A listening socket inherited from the previous generation (SIGUSR2 upgrade): the pool listens on it, once its
   * first workers are ready, instead of binding ip:port.
   */
  listenFd?: number;
}

/** A worker as `workers()` lists it. */
export interface PoolWorkerInfo {
  index: number;
  pid: number;
  slot: number;
  ready: boolean;
  retiring: boolean;
}

export class WorkerPool {
  #s: PlatformSettings;
  #log: Logger;
  #env: NodeJS.ProcessEnv;
  #state: PoolState = 'new';
  #server: Server | undefined;
  #board!: BoardReader;
  #workers = new Map<number, WorkerRecord>(); // by slot
  #queue: AcceptQueue;
  #stats = new AppStatsTable();
  #timers: NodeJS.Timeout[] = [];
  #rotor = 0;
  #quickCrashes = 0;
  #forkBlockedUntil = 0;
  #restartTimers = new Set<NodeJS.Timeout>();
  #stopped: Promise<void> | undefined;
  #listenFd: number | undefined;

  constructor(o: WorkerPoolOptions) {
    this.#s = o.settings;
    this.#listenFd = o.listenFd;
    this.#log = o.log;
    this.#env = o.env ?? process.env;
    this.#queue = new AcceptQueue({
      maxCount: this.#s.acceptQueueCount,
      timeoutMs: this.#s.acceptQueueTimeoutMs,
      log: this.#log,
      dispatch: (socket) => this.#dispatch(socket),
      onWaitingChange: (waiting) => this.#board.setWaiting(waiting),
      onStillWaiting: this.#s.mode === 'FORK' ? () => this.#forkForQueue() : undefined,
    });
  }

  get state(): PoolState {
    return this.#state;
  }

  get mode(): PlatformSettings['mode'] {
    return this.#s.mode;
  }

  get address(): { ip: string; port: number } {
    const a = this.#server?.address();
    if (a && typeof a === 'object') return { ip: a.address, port: a.port };
    return { ip: this.#s.ip, port: this.#s.port };
  }

  /** Binds the listen address, starts the mode's first workers and resolves when they are ready. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`pool already ${this.#state}`);
    this.#state = 'starting';
    createBoard(this.#s.boardPath, this.#s.maxCount * 2, process.pid);
    this.#board = new BoardReader(this.#s.boardPath);
    const server = createServer({ pauseOnConnect: true, noDelay: true });
    server.on('connection', (socket) => this.#onConnection(socket));
    server.on('error', (err) => this.#log.error({ err }, 'listen socket error'));
    const fd = this.#listenFd;
    const listen = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once('error', (err) =>
          reject(new IbpError('IBP_ERR_PLATFORM_LISTEN', `cannot listen on ${this.#s.ip}:${this.#s.port}${fd === undefined ? '' : ` (inherited fd ${fd})`}: ${err.message}`, { cause: err })),
        );
        server.listen(fd === undefined ? { host: this.#s.ip, port: this.#s.port, backlog: 1024 } : { fd, backlog: 1024 }, () => resolve());
      });
    // An inherited socket is taken over only once the first workers are ready: the old generation still serves
    // meanwhile, and this one must not accept connections it cannot serve yet.
    if (fd === undefined) await listen();
    this.#server = server;
    const first = this.#s.mode === 'STATIC_WORKERPOOL' ? this.#s.maxCount : this.#s.mode === 'DYNAMIC_WORKERPOOL' ? initialDynamicCount(this.#s.dynamic, this.#s.maxCount) : 0;
    const ready: Promise<void>[] = [];
    for (let i = 0; i < first; i++) ready.push(this.#spawn(this.#freeIndex()));
    await Promise.all(ready);
    if (fd !== undefined) await listen();
    this.#every(TIMEOUT_SCAN_MS, () => this.#scanTimeouts());
    this.#every(STATS_WRITE_MS, () => this.#writeStats());
    if (this.#s.mode === 'DYNAMIC_WORKERPOOL') this.#every(this.#s.dynamic.adjustIntervalMs, () => this.#adjust());
    this.#state = 'running';
    this.#log.info({ ip: this.address.ip, port: this.address.port, mode: this.#s.mode, workers: first, maxCount: this.#s.maxCount }, 'pool ready');
  }

  /** The listening socket's file descriptor (handed to the next generation on SIGUSR2); undefined when not listening. */
  get listenFd(): number | undefined {
    const fd = (this.#server as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** Workers alive and not retiring (starting ones included). */
  get liveCount(): number {
    return this.#liveCount();
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.push(t);
  }

  #freeSlot(): number {
    for (let s = 0; s < this.#board.slots; s++) if (!this.#workers.has(s)) return s;
    return -1;
  }

  /** The smallest worker index (1-based) no live, non-retiring worker has. */
  #freeIndex(): number {
    const used = new Set<number>();
    for (const w of this.#workers.values()) if (!w.retiring) used.add(w.index);
    let i = 1;
    while (used.has(i)) i++;
    return i;
  }

  /** Workers that are neither retiring nor gone. */
  #liveCount(): number {
    let n = 0;
    for (const w of this.#workers.values()) if (!w.retiring) n++;
    return n;
  }

  /** Starts the worker with this index; resolves when it is ready (rejects if it dies first). */
  #spawn(index: number): Promise<void> {
    const slot = this.#freeSlot();
    if (slot < 0) return Promise.reject(new IbpError('IBP_ERR_PLATFORM_START', `no free bulletin-board slot for worker ${index}`));
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
      assigned: false,
      claimUntil: 0,
      claimTx: 0,
      termSent: false,
      exited: new Promise<void>((res) => child.once('exit', () => res())),
    };
    this.#workers.set(slot, rec);
    this.#board.markStarting(slot, rec.pid, index);
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
        this.#queue.drain();
        break;
      case 'idle':
        this.#queue.drain();
        break;
      case 'retiring':
        if (!rec.retiring) {
          rec.retiring = true;
          this.#log.info({ index: rec.index, pid: rec.pid, reason: m.reason }, 'worker retiring');
          if (m.reason === 'recycle' && this.#state === 'running' && this.#s.mode !== 'FORK') this.#replace(this.#freeIndex(), 0);
        }
        break;
      case 'stats':
        if (Array.isArray(m.apps)) this.#stats.merge(m.apps);
        break;
      case 'fatal':
        this.#log.error({ index: rec.index, pid: rec.pid, error: m.error }, 'worker reported a fatal error');
        break;
    }
  }

  #onExit(rec: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    this.#workers.delete(rec.slot);
    this.#board.clearSlot(rec.slot);
    this.#recoverHandOvers(rec);
    if (this.#state !== 'running' && this.#state !== 'starting') return;
    // Throttled: a worker that died before it was ready, or exited by itself right after its start (a broken
    // install or package). One killed by a signal from outside (an operator, a timeout layer) is replaced at once.
    const quick = !rec.ready || (Date.now() - rec.startedAt < QUICK_CRASH_MS && signal === null);
    if (rec.retiring) {
      this.#log.info({ index: rec.index, pid: rec.pid, code }, 'worker exited after retiring');
    } else {
      this.#quickCrashes = quick ? this.#quickCrashes + 1 : 0;
      const delay = quick ? Math.min(100 * 2 ** (this.#quickCrashes - 1), 10_000) : 0;
      this.#log.warn({ index: rec.index, pid: rec.pid, code, signal, restartInMs: this.#s.mode === 'FORK' ? undefined : delay }, 'worker died; replacing it');
      if (this.#s.mode === 'FORK') {
        if (!rec.ready) this.#forkBlockedUntil = Date.now() + delay;
      } else if (this.#state === 'running') this.#replace(rec.index, delay);
    }
    if (this.#s.mode === 'FORK' && this.#state === 'running') this.#forkForQueue();
  }

  /**
   * Connections handed to a worker that died before it took them. Node passes one socket at a time and keeps it
   * (and queues the next ones) until the child acknowledges it; a child that dies first leaves them open in the
   * master with no one to serve them — their clients would wait for a pre-response until they time out. Nothing
   * was read from them yet, so they go back to the accept queue for another worker.
   */
  #recoverHandOvers(rec: WorkerRecord): void {
    const child = rec.child as unknown as NodeInternalChannel;
    const stranded: Socket[] = [];
    const pending = child._pendingMessage;
    if (pending?.handle && typeof pending.handle === 'object') {
      child._pendingMessage = null;
      try {
        // The raw TCP handle, wrapped again (paused, as a freshly accepted connection is).
        stranded.push(new Socket({ handle: pending.handle, pauseOnCreate: true } as unknown as SocketConstructorOpts));
      } catch (err) {
        this.#log.warn({ err }, 'could not take back a connection handed to a dead worker');
        (pending.handle as { close?: () => void }).close?.();
      }
    }
    const queued = child._handleQueue;
    if (Array.isArray(queued)) {
      child._handleQueue = null;
      for (const q of queued) if (q.handle instanceof Socket && !q.handle.destroyed) stranded.push(q.handle);
    }
    if (stranded.length === 0) return;
    this.#log.warn({ index: rec.index, pid: rec.pid, connections: stranded.length }, 'worker died before taking connections handed to it: they wait for another worker');
    for (const socket of stranded) {
      if (this.#state !== 'running' && this.#state !== 'draining') {
        socket.destroy();
        continue;
      }
      socket.on('error', () => socket.destroy());
      this.#queue.push(socket);
    }
    this.#queue.drain();
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
    this.#queue.push(socket);
  }

  /** Hands `socket` to an idle worker (FORK: a fresh one); false when none is idle. */
  #dispatch(socket: Socket): boolean {
    this.#board.refresh();
    const forkMode = this.#s.mode === 'FORK';
    const now = Date.now();
    let best: WorkerRecord | undefined;
    let bestConns = Infinity;
    const n = this.#board.slots;
    for (let k = 0; k < n; k++) {
      const slot = (this.#rotor + k) % n;
      const w = this.#workers.get(slot);
      if (!w || !w.ready || w.retiring || w.assigned || !w.child.connected) continue;
      if (this.#board.stateOf(slot) !== 'idle') continue;
      if (w.claimUntil > now && this.#board.transactionsOf(slot) === w.claimTx) continue;
      const conns = this.#board.connectionsOf(slot);
      if (conns < bestConns) {
        best = w;
        bestConns = conns;
        if (conns === 0) break;
      }
    }
    if (!best) return false;
    const chosen = best;
    if (forkMode) chosen.assigned = true;
    chosen.claimUntil = now + CLAIM_MS;
    chosen.claimTx = this.#board.transactionsOf(chosen.slot);
    this.#rotor = (chosen.slot + 1) % n;
    const msg: MasterMessage = { type: 'conn' };
    chosen.child.send(msg, socket, (err) => {
      if (err) {
        this.#log.warn({ err, index: chosen.index }, 'handing a connection to a worker failed');
        socket.destroy();
      }
    });
    return true;
  }

  /** FORK: starts a worker for every waiting connection that has none coming, within max_count. */
  #forkForQueue(): void {
    if (this.#state !== 'running' && this.#state !== 'draining') return;
    const now = Date.now();
    if (now < this.#forkBlockedUntil) {
      const t = setTimeout(() => {
        this.#restartTimers.delete(t);
        this.#forkForQueue();
      }, this.#forkBlockedUntil - now);
      this.#restartTimers.add(t);
      return;
    }
    let coming = 0;
    for (const w of this.#workers.values()) if (!w.retiring && !w.assigned) coming++;
    let need = Math.min(this.#queue.length - coming, this.#s.maxCount - this.#liveCount());
    while (need-- > 0 && this.#freeSlot() >= 0) {
      const index = this.#freeIndex();
      this.#spawn(index).catch((err) => this.#log.error({ err, index }, 'forked worker failed to start'));
    }
  }

  /** DYNAMIC: one adjustment cycle. */
  #adjust(): void {
    if (this.#state !== 'running') return;
    this.#board.refresh();
    const counts: PoolCounts = { idle: 0, busy: 0, starting: 0, waiting: this.#queue.length };
    const idle: WorkerRecord[] = [];
    for (const [slot, w] of this.#workers) {
      if (w.retiring) continue;
      if (!w.ready) counts.starting++;
      else if (this.#board.stateOf(slot) === 'idle') {
        counts.idle++;
        idle.push(w);
      } else counts.busy++;
    }
    const plan = planAdjustment(counts, this.#s.dynamic, this.#s.maxCount);
    if (plan.create > 0) {
      this.#log.info({ ...counts, create: plan.create }, 'dynamic pool grows');
      for (let i = 0; i < plan.create && this.#freeSlot() >= 0; i++) {
        const index = this.#freeIndex();
        this.#spawn(index).catch((err) => this.#log.error({ err, index }, 'new worker failed to start'));
      }
    } else if (plan.destroy > 0) {
      this.#log.info({ ...counts, destroy: plan.destroy }, 'dynamic pool shrinks');
      // Retire the idle workers with the fewest connections first, then the highest indexes.
      idle.sort((a, b) => this.#board.connectionsOf(a.slot) - this.#board.connectionsOf(b.slot) || b.index - a.index);
      for (const w of idle.slice(0, plan.destroy)) {
        w.retiring = true;
        // Retired like a recycle, not stopped: an idle worker may still hold a long connection whose next request
        // is already on the wire; it is served, and the connection moves on with GOAWAY (never refused).
        const msg: MasterMessage = { type: 'drain' };
        if (w.child.connected) w.child.send(msg);
        else w.child.kill('SIGTERM');
      }
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

  #writeStats(): void {
    try {
      this.#stats.write(this.#s.statsPath, process.pid);
    } catch (err) {
      this.#log.warn({ err, path: this.#s.statsPath }, 'cannot write the statistics file');
    }
  }

  /** Sends a signal to every live worker (SIGUSR1: reopen log files). */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const w of this.#workers.values()) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  }

  /** The workers the master knows (starting, idle, busy and retiring ones). */
  workers(): PoolWorkerInfo[] {
    return [...this.#workers.values()].map((w) => ({ index: w.index, pid: w.pid, slot: w.slot, ready: w.ready, retiring: w.retiring }));
  }

  /**
   * Hand-over to a new generation (SIGUSR2): closes this process's copy of the listen socket (the new generation
   * holds its own and keeps accepting, so no connection is refused), lets the connections already accepted and
   * waiting go to workers as they turn idle, then retires every worker the recycle way — GOAWAY on its long
   * connections, a request already on the wire still served — and resolves when all have exited (those left
   * after `graceMs` are killed). No worker is replaced meanwhile.
   */
  async drain(graceMs: number = STOP_GRACE_MS): Promise<void> {
    if (this.#state !== 'running') return this.stop(graceMs);
    this.#state = 'draining';
    for (const t of this.#restartTimers) clearTimeout(t);
    const server = this.#server;
    this.#server = undefined;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    // Bounded: a waiting connection is closed past accept_queue_timeout.
    while (this.#queue.length > 0) {
      this.#queue.drain();
      if (this.#queue.length > 0) await new Promise((r) => setTimeout(r, 2));
    }
    const all = [...this.#workers.values()];
    for (const w of all) {
      const msg: MasterMessage = { type: 'drain' };
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
    await this.stop(0);
    await closed;
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
      for (const t of this.#timers) clearInterval(t);
      this.#queue.close();
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
      if (this.#board) {
        this.#writeStats();
        this.#board.close();
      }
      this.#state = 'stopped';
      this.#log.info('pool stopped');
    })();
    return this.#stopped;
  }
}
