/**
 * The supervisor of a listening (or plain) service in one generation (SPEC §8.1 #107, §8.4 #123–#125).
 *
 * - **resident** (default): `server-proc-count` processes run all the time; one that exits is started again at
 *   once, or after the throttle's delay when it crashed right after its start.
 * - **on-demand** (`server-on-demand = yes`, ACL's semi-resident): no process runs until a connection waits on
 *   one of the service's sockets; the master notices it without accepting it (`ListenSocket.watch`) and starts
 *   a process, which accepts it from the inherited fd. The process exits by itself after `max-idle` seconds or
 *   `max-use` connections (see `serveInheritedFds`); the master then watches again. While fewer than
 *   `server-proc-count` run, a connection still waiting after a short hold starts one more (only for
 *   `server-nonblocking = yes` services: the watch sets O_NONBLOCK on the shared socket).
 */
import type { Logger } from 'pino';
import { IbpError } from '../core/errors.js';
import type { ListenSocket } from './listen-socket.js';
import { isCrash, RestartThrottle, type ProcessEnd } from './restart-throttle.js';
import type { ServiceSettings } from './service-config.js';
import { ServiceOutput, serviceEnv, startServiceProcess, type ServiceProcess } from './service-spawn.js';
import { TimerSet, type ServiceStatus, type Supervisor, type SupervisorState } from './supervisor.js';

/** On-demand: a new process gets this long to accept before a waiting connection starts another one. */
export const GROW_HOLD_MS = 1000;
/** On-demand: how long a connection must keep waiting once noticed before another process is started. */
export const GROW_CONFIRM_MS = 100;

export interface ServiceRunnerOptions {
  settings: ServiceSettings;
  /** The service's listen sockets, in `server-service` order (fds 3, 4, …). */
  sockets: readonly ListenSocket[];
  log: Logger;
  generation: number;
  /** Base environment of the processes (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Working directory of the processes (default process.cwd()). */
  cwd?: string;
}

interface Running extends ServiceProcess {
  slot: number;
}

/** Runs a resident or on-demand service (see the module comment). */
export class ServiceRunner implements Supervisor {
  readonly settings: ServiceSettings;
  readonly generation: number;
  readonly socketKeys: readonly string[];
  #sockets: readonly ListenSocket[];
  #log: Logger;
  #env: NodeJS.ProcessEnv;
  #cwd: string;
  #state: SupervisorState = 'new';
  #procs = new Map<number, Running>(); // by slot
  #timers = new TimerSet();
  #throttle: RestartThrottle;
  #output: ServiceOutput | undefined;
  #started = 0;
  #lastSpawnAt = 0;
  #growing = false;
  #stopped: Promise<void> | undefined;
  /** The first readiness (see whenReady): settled once. */
  #gate: { promise: Promise<void>; resolve: () => void; reject: (e: IbpError) => void; settled: boolean };

  constructor(o: ServiceRunnerOptions) {
    this.settings = o.settings;
    this.generation = o.generation;
    this.#sockets = o.sockets;
    this.socketKeys = o.sockets.map((s) => s.address.key);
    this.#log = o.log.child({ service: o.settings.name, generation: o.generation });
    this.#env = o.env ?? process.env;
    this.#cwd = o.cwd ?? process.cwd();
    this.#throttle = new RestartThrottle({ minMs: o.settings.throttleMinMs, maxMs: o.settings.throttleMaxMs });
    let resolve!: () => void;
    let reject!: (e: IbpError) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // nobody may be waiting
    this.#gate = { promise, resolve, reject, settled: false };
  }

  #settleGate(err?: IbpError): void {
    if (this.#gate.settled) return;
    this.#gate.settled = true;
    if (err) this.#gate.reject(err);
    else this.#gate.resolve();
  }

  whenReady(timeoutMs?: number): Promise<void> {
    if (this.#gate.settled || timeoutMs === undefined) return this.#gate.promise;
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        const pids = [...this.#procs.values()].map((p) => p.pid).join(', ');
        this.#settleGate(new IbpError('IBP_ERR_MASTER_START', `service ${this.settings.name} (pid ${pids || 'none'}) was not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#gate.promise.then(resolve, reject).finally(() => clearTimeout(t));
    });
  }

  /** Resident: ready once every slot runs a ready process. */
  #checkReady(): void {
    if (this.#gate.settled || this.#state !== 'running') return;
    let ready = 0;
    for (const p of this.#procs.values()) if (p.ready) ready++;
    if (ready >= this.settings.procCount) {
      this.#log.info({ pids: [...this.#procs.values()].map((p) => p.pid) }, 'service ready');
      this.#settleGate();
    }
  }

  signal(sig: NodeJS.Signals): void {
    for (const p of this.#procs.values()) {
      try {
        p.child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  }

  get state(): SupervisorState {
    return this.#state;
  }

  start(): void {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    this.#output = new ServiceOutput(this.settings, this.#log);
    const s = this.settings;
    this.#log.info(
      { mode: s.onDemand ? 'on-demand' : 'resident', procCount: s.procCount, listen: this.#sockets.map((k) => ({ name: k.address.name, address: k.describe() })) },
      'service started',
    );
    if (s.onDemand) {
      this.#settleGate();
      this.#arm();
    } else for (let slot = 0; slot < s.procCount; slot++) this.#startSlot(slot);
  }

  /** Resident: starts the process of `slot` now, or when the throttle allows. */
  #startSlot(slot: number): void {
    if (this.#state !== 'running' || this.#procs.has(slot)) return;
    const wait = this.#throttle.notBefore - Date.now();
    if (wait > 0) this.#timers.later(wait, () => this.#startSlot(slot));
    else this.#spawn(slot);
  }

  #spawn(slot: number): void {
    for (const k of this.#sockets) {
      try {
        k.setNonBlocking(this.settings.nonBlocking);
      } catch (err) {
        this.#log.error({ err, address: k.describe() }, 'cannot set the socket flags');
      }
    }
    const env = serviceEnv(this.settings, this.#sockets, this.#env, process.pid);
    // The same object (not a copy): startServiceProcess keeps updating it (ready, statusText, stopRequested).
    const p: Running = Object.assign(startServiceProcess(this.settings, this.#sockets, this.#output!.stdio(), env, this.#cwd), { slot });
    this.#procs.set(slot, p);
    this.#started++;
    this.#lastSpawnAt = p.startedAt;
    this.#log.info({ pid: p.pid, slot }, 'service process started');
    void p.readied.then(() => {
      if (this.settings.readyNotify) this.#log.info({ pid: p.pid, slot }, 'service process ready');
      this.#checkReady();
    });
    void p.ended.then((end) => this.#onEnd(p, end));
  }

  #onEnd(p: Running, end: ProcessEnd): void {
    if (this.#procs.get(p.slot) === p) this.#procs.delete(p.slot);
    const fields = { pid: p.pid, slot: p.slot, code: end.code, signal: end.signal, ranMs: end.endedAt - end.startedAt, ...(p.statusText ? { status: p.statusText } : {}) };
    if (!p.ready && !this.#gate.settled) {
      const how = end.signal ? `signal ${end.signal}` : `code ${end.code}`;
      this.#settleGate(
        new IbpError('IBP_ERR_MASTER_START', `service ${this.settings.name}: process ${p.pid} exited (${how}) before it was ready${p.statusText ? `: ${p.statusText}` : ''}`),
      );
    }
    if (this.#state !== 'running') {
      this.#log.info({ ...fields, crashed: false }, 'service process exited');
      return;
    }
    const crashed = isCrash(end);
    const restartInMs = this.#throttle.delayAfter(end);
    const level = crashed ? 'warn' : 'info';
    this.#log[level]({ ...fields, crashed, restartInMs, quickCrashes: this.#throttle.quickCrashes }, 'service process exited');
    if (this.settings.onDemand) this.#arm();
    else this.#startSlot(p.slot);
  }

  /** On-demand: watches the sockets for a waiting connection when a process should be started for it. */
  #arm(): void {
    if (this.#state !== 'running') return;
    if (this.#procs.size === 0) {
      this.#watch(() => this.#demand());
    } else if (this.#procs.size < this.settings.procCount && this.settings.nonBlocking && !this.#growing) {
      this.#growing = true;
      this.#timers.later(this.#lastSpawnAt + GROW_HOLD_MS - Date.now(), () => {
        this.#growing = false;
        if (this.#state !== 'running' || this.#procs.size === 0 || this.#procs.size >= this.settings.procCount) return;
        this.#watch(() => {
          this.#growing = true;
          this.#timers.later(GROW_CONFIRM_MS, () => void this.#confirmGrowth());
        });
      });
    }
  }

  async #confirmGrowth(): Promise<void> {
    let waiting = false;
    for (const k of this.#sockets) if (!waiting && this.#state === 'running') waiting = await k.probe();
    this.#growing = false;
    if (waiting) this.#demand();
    else this.#arm();
  }

  #watch(onReadable: () => void): void {
    this.#unwatch();
    let fired = false;
    const fire = (): void => {
      if (fired) return;
      fired = true;
      this.#unwatch();
      onReadable();
    };
    for (const k of this.#sockets) {
      try {
        k.watch(fire);
      } catch (err) {
        this.#log.error({ err, address: k.describe() }, 'cannot watch the socket');
      }
    }
  }

  #unwatch(): void {
    for (const k of this.#sockets) k.unwatch();
  }

  /** On-demand: a connection waits; start a process now or when the throttle allows. */
  #demand(): void {
    if (this.#state !== 'running') return;
    const wait = this.#throttle.notBefore - Date.now();
    if (wait > 0) {
      this.#log.info({ startInMs: wait }, 'connection waiting; start throttled');
      this.#timers.later(wait, () => this.#demand());
      return;
    }
    if (this.#procs.size < this.settings.procCount) {
      let slot = 0;
      while (this.#procs.has(slot)) slot++;
      this.#spawn(slot);
    }
    this.#arm();
  }

  softStop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new') {
      this.#settleGate(new IbpError('IBP_ERR_MASTER_START', `service ${this.settings.name} was stopped before it started`));
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    this.#settleGate(new IbpError('IBP_ERR_MASTER_START', `service ${this.settings.name} was stopped before it was ready`));
    this.#timers.clear();
    this.#unwatch();
    const all = [...this.#procs.values()];
    this.#log.info({ processes: all.length, timeoutMs: this.settings.stopTimeoutMs }, 'soft stop');
    for (const p of all) signal(p, 'SIGTERM');
    const kill = setTimeout(() => {
      for (const p of all) if (p.child.exitCode === null && p.child.signalCode === null) {
        this.#log.warn({ pid: p.pid }, 'still running after server-stop-timeout: SIGKILL');
        signal(p, 'SIGKILL');
      }
    }, this.settings.stopTimeoutMs);
    await Promise.all(all.map((p) => p.ended));
    clearTimeout(kill);
    this.#output?.close();
    this.#state = 'stopped';
    this.#log.info('service stopped');
  }

  async destroy(): Promise<void> {
    const stopped = this.softStop();
    for (const p of this.#procs.values()) signal(p, 'SIGKILL');
    await stopped;
  }

  reopenOutput(): void {
    this.#output?.reopen();
  }

  status(): ServiceStatus {
    const until = this.#throttle.notBefore;
    return {
      name: this.settings.name,
      generation: this.generation,
      mode: this.settings.onDemand ? 'on-demand' : 'resident',
      state: this.#state,
      listen: this.#sockets.map((k) => ({ name: k.address.name, address: k.describe() })),
      processes: [...this.#procs.values()].map((p) => ({ pid: p.pid, slot: p.slot, startedAt: new Date(p.startedAt).toISOString(), stopping: p.stopRequested, ready: p.ready })),
      started: this.#started,
      quickCrashes: this.#throttle.quickCrashes,
      ...(until > Date.now() ? { throttledUntil: new Date(until).toISOString() } : {}),
    };
  }
}

/** Sends a signal to a service process, marking the end as planned (never ESRCH-throws). */
export function signal(p: ServiceProcess, sig: NodeJS.Signals): void {
  p.stopRequested = true;
  try {
    p.child.kill(sig);
  } catch {
    /* already gone */
  }
}
