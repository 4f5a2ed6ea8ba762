/**
 * The ibms monitor: forks the one worker, restarts it when it dies (throttled when it keeps dying young),
 * and stops it in order: SIGTERM → `stop` over the IPC channel → the worker answers its long-polls 304,
 * finishes what is in flight and exits → the monitor removes its pid file and exits.
 *
 * States: starting → running ⇄ restarting → stopping → stopped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError, type IbpErrorData } from '../core/errors.js';
import type { IbpLogger } from '../core/log.js';
import type { RegistrySettings } from './settings.js';

/** Messages from the worker. */
export type WorkerToMonitor =
  | { type: 'ready'; pid: number; ip: string; port: number }
  | { type: 'failed'; error: IbpErrorData };
/** Messages to the worker. */
export type MonitorToWorker = { type: 'stop' };

export type MonitorState = 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped';

/** A worker that lived at least this long resets the crash streak (restart at once). */
export const STABLE_WORKER_MS = 10_000;
/** Restart delays for workers dying young: 250 ms, doubling, at most this. */
export const MAX_RESTART_DELAY_MS = 5_000;
/** How long a stopping worker gets before SIGKILL. */
export const WORKER_STOP_GRACE_MS = 30_000;

const WORKER_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'worker-main.js');

/** Options of `RegistryMonitor`. */
export interface RegistryMonitorOptions {
  settings: RegistrySettings;
  log: IbpLogger;
  /** Called each time a worker is ready (the first one and every restart). */
  onWorkerReady?: (pid: number) => void;
}

/** Supervises the worker process. */
export class RegistryMonitor {
  readonly #settings: RegistrySettings;
  readonly #log: IbpLogger;
  readonly #onWorkerReady: ((pid: number) => void) | undefined;
  #state: MonitorState = 'starting';
  #worker: ChildProcess | undefined;
  #workerPid = 0;
  #port: number;
  #address: { ip: string; port: number } | undefined;
  #streak = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;

  constructor(opts: RegistryMonitorOptions) {
    this.#settings = opts.settings;
    this.#log = opts.log;
    this.#onWorkerReady = opts.onWorkerReady;
    this.#port = opts.settings.port;
  }

  get state(): MonitorState {
    return this.#state;
  }

  /** The pid of the current worker (0 between a crash and its restart). */
  get workerPid(): number {
    return this.#workerPid;
  }

  /** How many times a worker was restarted. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Forks the first worker and resolves with its address. @throws IbpError why the worker did not start. */
  async start(): Promise<{ ip: string; port: number }> {
    const address = await this.#spawn();
    this.#address = address;
    this.#port = address.port; // a restarted worker keeps the address, even when ibms.conf says port 0
    this.#state = 'running';
    return address;
  }

  /** Passes a signal on to the worker (SIGUSR1: reopen logs). */
  signalWorker(signal: NodeJS.Signals): void {
    try {
      this.#worker?.kill(signal);
    } catch {
      /* gone */
    }
  }

  /**
   * Stops the worker in order (or at once with `force`: SIGKILL) and waits for it to exit. Idempotent;
   * a second call with `force` kills a worker still finishing.
   */
  async stop(force = false): Promise<void> {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const w = this.#worker;
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    if (w === undefined || w.exitCode !== null || w.signalCode !== null) {
      this.#state = 'stopped';
      return;
    }
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    if (force) w.kill('SIGKILL');
    else if (w.connected) w.send({ type: 'stop' } satisfies MonitorToWorker, (err) => err && w.kill('SIGTERM'));
    else w.kill('SIGTERM');
    const killer = setTimeout(() => {
      this.#log.warn({ pid: w.pid, graceMs: WORKER_STOP_GRACE_MS }, 'worker did not stop in time: SIGKILL');
      w.kill('SIGKILL');
    }, WORKER_STOP_GRACE_MS);
    killer.unref();
    await exited;
    clearTimeout(killer);
    this.#state = 'stopped';
  }

  /** Forks a worker; resolves when it is ready, rejects when it fails or exits first. */
  #spawn(): Promise<{ ip: string; port: number }> {
    const child = fork(WORKER_MAIN, [], {
      env: { ...process.env, IBP_IBMS_SETTINGS: JSON.stringify(this.#settings), IBP_IBMS_PORT: String(this.#port) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    this.#worker = child;
    const startedAt = Date.now();
    return new Promise((resolve, reject) => {
      let ready = false;
      child.on('message', (m: WorkerToMonitor) => {
        if (m?.type === 'ready' && !ready) {
          ready = true;
          this.#workerPid = m.pid;
          this.#log.info({ pid: m.pid, ip: m.ip, port: m.port }, 'worker ready');
          this.#onWorkerReady?.(m.pid);
          resolve({ ip: m.ip, port: m.port });
        } else if (m?.type === 'failed' && !ready) {
          this.#log.error({ error: m.error }, 'worker failed to start');
          reject(IbpError.fromJSON(m.error));
        }
      });
      child.on('error', (err) => this.#log.error({ err }, 'worker process error'));
      child.once('exit', (code, signal) => {
        if (this.#worker === child) {
          this.#worker = undefined;
          this.#workerPid = 0;
        }
        if (!ready) {
          reject(new IbpError('IBP_ERR_REGISTRY_START', `worker exited (code ${code}, signal ${signal}) before it was ready: see log/ibms_worker.log`));
          if (this.#state === 'restarting') this.#scheduleRestart(Date.now() - startedAt);
          return;
        }
        if (this.#state === 'running') {
          this.#log.error({ pid: child.pid, code, signal }, 'worker died: restarting it');
          this.#scheduleRestart(Date.now() - startedAt);
        }
      });
    });
  }

  #scheduleRestart(livedMs: number): void {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'restarting';
    this.#streak = livedMs >= STABLE_WORKER_MS ? 0 : this.#streak + 1;
    const delay = this.#streak === 0 ? 0 : Math.min(250 * 2 ** (this.#streak - 1), MAX_RESTART_DELAY_MS);
    if (delay > 0) this.#log.warn({ delayMs: delay, streak: this.#streak }, 'worker keeps dying young: restart throttled');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#state !== 'restarting') return;
      this.#restarts += 1;
      this.#spawn().then(
        (a) => {
          if (this.#state === 'restarting') this.#state = 'running';
          if (a.port !== this.#address?.port) this.#log.warn({ port: a.port }, 'restarted worker listens on another port');
        },
        (err: unknown) => this.#log.error({ err }, 'restarted worker failed'),
      );
    }, delay);
  }
}
