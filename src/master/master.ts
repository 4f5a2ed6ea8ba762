/**
 * The generic master (lib-zc / ACL / Postfix master, SPEC §8.1, §8.4): takes the pid-file lock, binds every
 * listen address of every service, runs one supervisor per service, and on reload (SIGHUP in `ibp master`)
 * re-reads the config and moves to a new generation without closing a socket that is still configured:
 * the old generation is soft-stopped (its processes get SIGTERM: stop accepting, finish, exit) while the new
 * one starts on the same sockets. See docs/master.md for the process states.
 */
import type { Logger } from 'pino';
import { toIbpError } from '../core/errors.js';
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
  /** Older generations still finishing after a reload. */
  stopping: ServiceStatus[];
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

  #startGeneration(services: readonly ServiceSettings[]): void {
    const generation = ++this.#generation;
    const common = { log: this.#log, generation, env: this.#o.env, cwd: this.#o.cwd };
    this.#current = services.map((settings) =>
      settings.endpoints.kind === 'trigger'
        ? new TriggerRunner({ settings, ...common })
        : new ServiceRunner({ settings, sockets: settings.endpoints.addresses.map((a) => this.#sockets.get(a.key)!), ...common }),
    );
    for (const s of this.#current) s.start();
  }

  /**
   * Re-reads the config and switches to a new generation (see the module comment). A bad config or an address
   * that cannot be bound leaves the running generation as it is. Resolves true when the switch was made.
   */
  reload(): Promise<boolean> {
    const run = this.#serial.then(() => this.#reload());
    this.#serial = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<boolean> {
    if (this.#state !== 'running') return false;
    this.#log.info({ generation: this.#generation }, 'reload requested');
    let services: ServiceSettings[];
    try {
      services = this.#o.load();
      await this.#bindFor(services);
    } catch (err) {
      const e = toIbpError(err);
      this.#log.error({ err: e, code: e.code }, 'reload failed; the running services are kept');
      return false;
    }
    const old = this.#current;
    // The old generation lets go of its sockets' watches before the new one takes them.
    for (const s of old) {
      this.#stopping.add(s);
      void s.softStop().then(() => {
        this.#stopping.delete(s);
        this.#closeUnusedSockets();
      });
    }
    this.#startGeneration(services);
    this.#closeUnusedSockets();
    this.#log.info({ generation: this.#generation, services: this.#current.map((s) => s.settings.name) }, 'reload done');
    return true;
  }

  /** Closes the master's copy of sockets no running or stopping supervisor uses. */
  #closeUnusedSockets(): void {
    const used = new Set<string>();
    for (const s of [...this.#current, ...this.#stopping]) for (const k of s.socketKeys) used.add(k);
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

