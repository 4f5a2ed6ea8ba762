/**
 * The generic master (lib-zc / ACL / Postfix master, SPEC §8.1, §8.4): takes the pid-file lock, binds every
 * listen address of every service, runs one supervisor per service, and on reload (SIGHUP in `ibp master`)
 * re-reads the config and moves to a new generation without closing a socket that is still configured:
 * the old generation is soft-stopped (its processes get SIGTERM: stop accepting, finish, exit) while the new
 * one starts on the same sockets. See docs/master.md for the process states.
 */
import type { Logger } from 'pino';
import { IbpError, toIbpError } from '../core/errors.js';
import { cfError } from './cf-file.js';
import { ListenSocket, makeListening } from './listen-socket.js';
import { PidFileLock } from './pid-lock.js';
import type { ServiceSettings } from './service-config.js';
import { ServiceRunner } from './service-runner.js';
import type { ServiceStatus, Supervisor } from './supervisor.js';
import { TriggerRunner } from './trigger-runner.js';

/** The master's life. */
export type MasterState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface MasterOptions {
  /** Gives the services: called at start and on every reload (throws IBP_ERR_MASTER_CONFIG on a bad file). */
  load: () => ServiceSettings[];
  /** Pid file to write and lock; none in alone mode. */
  pidFile?: string;
  log: Logger;
  /** Base environment of service processes (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Working directory of service processes (default process.cwd()). */
  cwd?: string;
}

/** What the lock socket and `status()` report. */
export interface MasterStatus {
  pid: number;
  state: MasterState;
  generation: number;
  startedAt: string;
  services: ServiceStatus[];
  /** A new generation starting during a soft restart, not ready yet (`server-ready = notify` services). */
  starting: ServiceStatus[];
  /** Older generations still finishing after a reload. */
  stopping: ServiceStatus[];
}

/** What a soft restart (`Master.restart`) did. */
export interface RestartOutcome {
  ok: boolean;
  /** Why it failed (the running generation is kept). */
  error?: IbpError;
  /** On success the new generation; on failure what had been started of it (stopped again). */
  services: ServiceStatus[];
}

/** A running master. Build it with `Master.start`. */
export class Master {
  #o: MasterOptions;
  #log: Logger;
  #state: MasterState = 'new';
  #lock: PidFileLock | undefined;
  #sockets = new Map<string, ListenSocket>();
  #current: Supervisor[] = [];
  #stopping = new Set<Supervisor>();
  /** A new generation waiting to be ready (soft restart of `server-ready = notify` services). */
  #pending: Supervisor[] = [];
  #generation = 0;
  #startedAt = Date.now();
  #serial: Promise<unknown> = Promise.resolve();
  #closed: Promise<void> | undefined;
  #resolveDone!: () => void;
  /** Resolves when the master has stopped (after `close()` or `destroy()`). */
  readonly done: Promise<void> = new Promise((r) => (this.#resolveDone = r));

  private constructor(o: MasterOptions) {
    this.#o = o;
    this.#log = o.log;
  }

  /**
   * Locks the pid file, loads the services, binds their sockets and starts them.
   * @throws IbpError IBP_ERR_MASTER_LOCKED, IBP_ERR_MASTER_PID_FILE, IBP_ERR_MASTER_CONFIG, IBP_ERR_MASTER_LISTEN
   *   (nothing is left running or locked when it throws).
   */
  static async start(o: MasterOptions): Promise<Master> {
    const m = new Master(o);
    m.#state = 'starting';
    try {
      if (o.pidFile) m.#lock = await PidFileLock.acquire(o.pidFile, () => m.status());
      const services = o.load();
      const fresh = await m.#bindFor(services);
      m.#startGeneration(services);
      m.#state = 'running';
      m.#log.info({ generation: m.#generation, services: m.#current.map((s) => s.status()), bound: fresh }, 'master ready');
      return m;
    } catch (err) {
      for (const s of m.#sockets.values()) s.close();
      m.#sockets.clear();
      await m.#lock?.release();
      m.#state = 'stopped';
      m.#resolveDone();
      throw err;
    }
  }

  get state(): MasterState {
    return this.#state;
  }

  /** Binds the sockets the services need that are not open yet; returns how many were new. */
  async #bindFor(services: readonly ServiceSettings[]): Promise<number> {
    const owner = new Map<string, ServiceSettings>();
    for (const s of services) {
      if (s.endpoints.kind !== 'listen') continue;
      for (const a of s.endpoints.addresses) {
        const other = owner.get(a.key);
        if (other && other !== s) throw cfError({ file: s.file, key: 'server-service' }, `${a.text} is also an address of service ${other.name} (${other.file})`);
        owner.set(a.key, s);
      }
    }
    const fresh: ListenSocket[] = [];
    try {
      for (const s of services) {
        if (s.endpoints.kind !== 'listen') continue;
        for (const a of s.endpoints.addresses) {
          if (this.#sockets.has(a.key) || fresh.some((f) => f.address.key === a.key)) continue;
          fresh.push(await ListenSocket.bind(a));
        }
      }
      makeListening(fresh);
    } catch (err) {
      for (const f of fresh) f.close();
      throw err;
    }
    for (const f of fresh) {
      this.#sockets.set(f.address.key, f);
      this.#log.info({ listener: f.address.name, address: f.describe(), fd: f.fd }, 'listening');
    }
    return fresh.length;
  }

  /** Builds the supervisors of a new generation (not started). */
  #makeGeneration(services: readonly ServiceSettings[]): Supervisor[] {
    const generation = ++this.#generation;
    const common = { log: this.#log, generation, env: this.#o.env, cwd: this.#o.cwd };
    return services.map((settings) =>
      settings.endpoints.kind === 'trigger'
        ? new TriggerRunner({ settings, ...common })
        : new ServiceRunner({ settings, sockets: settings.endpoints.addresses.map((a) => this.#sockets.get(a.key)!), ...common }),
    );
  }

  #startGeneration(services: readonly ServiceSettings[]): void {
    this.#current = this.#makeGeneration(services);
    for (const s of this.#current) s.start();
  }

  /**
   * Re-reads the config and switches to a new generation (see the module comment). A bad config or an address
   * that cannot be bound leaves the running generation as it is. Resolves true when the switch was made.
   */
  reload(): Promise<boolean> {
    return this.restart().then((r) => r.ok);
  }

  /**
   * `reload()` with its outcome: the new generation's status on success; on failure the reason (a bad config,
   * an address that cannot be bound, a `server-ready = notify` service whose new process exited or was not ready
   * within `server-ready-timeout`) and what had been started of the new generation (it is gone again).
   */
  restart(): Promise<RestartOutcome> {
    const run = this.#serial.then(() => this.#reload());
    this.#serial = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<RestartOutcome> {
    if (this.#state !== 'running') return { ok: false, error: new IbpError('IBP_ERR_MASTER_START', `the master is ${this.#state}`), services: [] };
    this.#log.info({ generation: this.#generation }, 'reload requested');
    let services: ServiceSettings[];
    try {
      services = this.#o.load();
      await this.#bindFor(services);
    } catch (err) {
      const e = toIbpError(err);
      this.#log.error({ err: e, code: e.code }, 'reload failed; the running services are kept');
      this.#closeUnusedSockets();
      return { ok: false, error: e, services: [] };
    }
    const next = this.#makeGeneration(services);
    // Resident `server-ready = notify` services start first, beside the old generation, which is stopped only
    // once they are ready (nginx's order). The others keep the plain order: the old generation lets go of the
    // sockets' watches before the new one takes them.
    const gated = next.filter((s) => s.settings.readyNotify && !s.settings.onDemand && s.settings.endpoints.kind === 'listen');
    if (gated.length > 0) {
      this.#pending = gated;
      for (const s of gated) s.start();
      try {
        await Promise.all(gated.map((s) => s.whenReady(s.settings.readyTimeoutMs)));
      } catch (err) {
        const e = toIbpError(err);
        const started = gated.map((s) => s.status());
        this.#log.error({ err: e, code: e.code, generation: this.#generation }, 'reload failed: the new generation did not become ready; the running services are kept');
        await Promise.all(gated.map((s) => s.destroy()));
        this.#pending = [];
        this.#closeUnusedSockets();
        return { ok: false, error: e, services: started };
      }
      this.#pending = [];
    }
    const old = this.#current;
    for (const s of old) {
      this.#stopping.add(s);
      void s.softStop().then(() => {
        this.#stopping.delete(s);
        this.#closeUnusedSockets();
      });
    }
    this.#current = next;
    for (const s of next) if (!gated.includes(s)) s.start();
    this.#closeUnusedSockets();
    this.#log.info({ generation: this.#generation, services: this.#current.map((s) => s.settings.name) }, 'reload done');
    return { ok: true, services: this.#current.map((s) => s.status()) };
  }

  /**
   * Resolves once every service of the current generation is ready (see `Supervisor.whenReady`): for
   * `server-ready = notify` services, once their processes wrote READY=1.
   * @throws IbpError IBP_ERR_MASTER_START when one of the first processes ended before it was ready.
   */
  async ready(timeoutMs?: number): Promise<void> {
    await Promise.all(this.#current.map((s) => s.whenReady(timeoutMs)));
  }

  /** Sends a signal to every service process (current, starting and stopping generations). */
  signal(sig: NodeJS.Signals): void {
    for (const s of [...this.#current, ...this.#pending, ...this.#stopping]) s.signal(sig);
  }

  /** Closes the master's copy of sockets no running or stopping supervisor uses. */
  #closeUnusedSockets(): void {
    const used = new Set<string>();
    for (const s of [...this.#current, ...this.#pending, ...this.#stopping]) for (const k of s.socketKeys) used.add(k);
    for (const [key, sock] of this.#sockets) {
      if (used.has(key)) continue;
      sock.close();
      this.#sockets.delete(key);
      this.#log.info({ address: sock.describe() }, 'listen socket closed');
    }
  }

  /** Reopens every service's `server-log` file. */
  reopenOutputs(): void {
    for (const s of [...this.#current, ...this.#stopping]) s.reopenOutput();
  }

  status(): MasterStatus {
    return {
      pid: process.pid,
      state: this.#state,
      generation: this.#generation,
      startedAt: new Date(this.#startedAt).toISOString(),
      services: this.#current.map((s) => s.status()),
      starting: this.#pending.map((s) => s.status()),
      stopping: [...this.#stopping].map((s) => s.status()),
    };
  }

  /** Soft stop of every service (SIGTERM, SIGKILL after each one's `server-stop-timeout`), then unlock. */
  close(): Promise<void> {
    return this.#shutdown(false);
  }

  /** Kills every service process at once (SIGKILL), then unlocks. Also finishes a `close()` in progress. */
  destroy(): Promise<void> {
    return this.#shutdown(true);
  }

  #shutdown(now: boolean): Promise<void> {
    const all = (): Supervisor[] => [...this.#current, ...this.#stopping];
    if (now) for (const s of all()) void s.destroy();
    // A new generation still starting is given up (the reload waiting on it then fails and returns).
    for (const s of this.#pending) void s.destroy();
    this.#closed ??= this.#serial.then(async () => {
      this.#state = 'stopping';
      this.#log.info({ now }, 'master stopping');
      await Promise.all(all().map((s) => (now ? s.destroy() : s.softStop())));
      for (const s of this.#sockets.values()) s.close();
      this.#sockets.clear();
      await this.#lock?.release();
      this.#state = 'stopped';
      this.#log.info('master stopped');
      this.#resolveDone();
    });
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

