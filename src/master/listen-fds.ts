/**
 * The service side of the master's socket hand-over, for services written in Node.js. The master (or systemd)
 * starts a service with its listening sockets at fds 3, 4, … and says so in the environment:
 * `LISTEN_FDS` (how many), `LISTEN_PID` (the pid they are meant for), `LISTEN_FDNAMES` (`:`-separated names).
 * `listenFdsFromEnv` turns them into listening `net.Server`s; `serveInheritedFds` adds the master's rules
 * for a service process: exit after `max-use` connections or `max-idle` seconds idle, soft stop on SIGTERM
 * (stop accepting, finish the open connections), and stop when the master is gone.
 */
import { Server, type Socket } from 'node:net';
import { IbpError } from '../core/errors.js';

/** The first inherited fd (systemd's SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** An inherited fd and its name. */
export interface InheritedFd {
  fd: number;
  name: string;
}

/** An inherited socket, listening in this process. */
export interface InheritedListener extends InheritedFd {
  server: Server;
}

/**
 * Reads LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES as systemd's `sd_listen_fds_with_names` does: none when
 * LISTEN_FDS is unset or LISTEN_PID is another process's (the variables were inherited by mistake); names
 * default to `unknown`.
 * @throws IbpError IBP_ERR_MASTER_LISTEN_FDS for values that are not numbers or a name count that differs.
 */
export function inheritedListenFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): InheritedFd[] {
  const fdsText = env.LISTEN_FDS;
  if (fdsText === undefined || fdsText === '') return [];
  const pidText = env.LISTEN_PID;
  if (pidText !== undefined && pidText !== '') {
    if (!/^\d+$/.test(pidText)) throw new IbpError('IBP_ERR_MASTER_LISTEN_FDS', `LISTEN_PID=${JSON.stringify(pidText)} is not a pid`);
    if (Number(pidText) !== pid) return [];
  }
  if (!/^\d+$/.test(fdsText) || Number(fdsText) > 1024) {
    throw new IbpError('IBP_ERR_MASTER_LISTEN_FDS', `LISTEN_FDS=${JSON.stringify(fdsText)} is not a count of fds (0..1024)`);
  }
  const count = Number(fdsText);
  const names = env.LISTEN_FDNAMES === undefined || env.LISTEN_FDNAMES === '' ? [] : env.LISTEN_FDNAMES.split(':');
  if (names.length > 0 && names.length !== count) {
    throw new IbpError('IBP_ERR_MASTER_LISTEN_FDS', `LISTEN_FDNAMES has ${names.length} names for LISTEN_FDS=${count}`);
  }
  return Array.from({ length: count }, (_, i) => ({ fd: LISTEN_FDS_START + i, name: names[i] || 'unknown' }));
}

export interface ListenFdsOptions {
  env?: NodeJS.ProcessEnv;
  /** Remove LISTEN_* from `env` so child processes do not see them (default true, as systemd advises). */
  unsetEnv?: boolean;
  /** Attached before any connection can be accepted. */
  onConnection?: (socket: Socket, name: string) => void;
}

/**
 * Listening `net.Server`s on the inherited fds (none when not started by a master).
 * @example
 * for (const l of listenFdsFromEnv()) l.server.on('connection', (s) => s.end('hello\n'));
 * @throws IbpError IBP_ERR_MASTER_LISTEN_FDS (malformed variables, or an fd that is not a listening socket).
 */
export function listenFdsFromEnv(o: ListenFdsOptions = {}): InheritedListener[] {
  const env = o.env ?? process.env;
  const fds = inheritedListenFds(env);
  if (o.unsetEnv !== false) for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[k];
  return fds.map(({ fd, name }) => {
    const server = new Server({ noDelay: true });
    if (o.onConnection) server.on('connection', (s) => o.onConnection!(s, name));
    try {
      server.listen({ fd });
    } catch (err) {
      throw new IbpError('IBP_ERR_MASTER_LISTEN_FDS', `inherited fd ${fd} (${name}) is not a listening socket: ${(err as Error).message}`, { cause: err });
    }
    if ((server as unknown as { _handle: unknown })._handle == null) {
      server.once('error', () => undefined); // net.Server reports it again on the next tick
      throw new IbpError('IBP_ERR_MASTER_LISTEN_FDS', `inherited fd ${fd} (${name}) is not a listening socket`);
    }
    return { fd, name, server };
  });
}

/** Why an inherited server stopped. */
export type InheritedServerStop = 'max-use' | 'max-idle' | 'soft-stop' | 'master-gone' | 'closed';

export interface InheritedServerOptions {
  /** Called for every accepted connection with the name of its listen socket. */
  onConnection: (socket: Socket, name: string) => void;
  /** Connections after which the process stops accepting (0 = unlimited; default `$IBP_CF_MAX_USE`). */
  maxUse?: number;
  /** Idle time after which it stops (0 = never; default `$IBP_CF_MAX_IDLE` seconds). */
  maxIdleMs?: number;
  /** The signal that asks for a soft stop (default SIGTERM; null: none). */
  softStopSignal?: NodeJS.Signals | null;
  /** How often to check that the master (`$IBP_MASTER_PID`) is still the parent (default 1000 ms; 0: never). */
  masterCheckMs?: number;
  env?: NodeJS.ProcessEnv;
}

function envNumber(env: NodeJS.ProcessEnv, key: string, scale: number): number {
  const v = Number(env[key] ?? '0');
  return Number.isFinite(v) && v > 0 ? Math.round(v * scale) : 0;
}

/**
 * A service process's server on its inherited sockets. It stops accepting on `max-use`, `max-idle`, the soft
 * stop signal, the master's death or `close()`; `stopped` resolves once every open connection has ended, and
 * the process then exits by itself when it holds nothing else.
 * @example
 * const srv = serveInheritedFds({ onConnection: (s) => s.pipe(s) });
 * console.error('stopped:', await srv.stopped);
 */
export class InheritedServer {
  readonly listeners: InheritedListener[];
  /** Resolves with the reason once the listeners are closed and every connection has ended. */
  readonly stopped: Promise<InheritedServerStop>;
  #o: Required<Omit<InheritedServerOptions, 'env' | 'onConnection'>> & Pick<InheritedServerOptions, 'onConnection'>;
  #active = new Set<Socket>();
  #served = 0;
  #reason: InheritedServerStop | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #masterTimer: NodeJS.Timeout | undefined;
  #resolve!: (r: InheritedServerStop) => void;
  #onSignal = (): void => this.#stopAccepting('soft-stop');

  constructor(o: InheritedServerOptions) {
    const env = o.env ?? process.env;
    this.#o = {
      onConnection: o.onConnection,
      maxUse: o.maxUse ?? envNumber(env, 'IBP_CF_MAX_USE', 1),
      maxIdleMs: o.maxIdleMs ?? envNumber(env, 'IBP_CF_MAX_IDLE', 1000),
      softStopSignal: o.softStopSignal === undefined ? 'SIGTERM' : o.softStopSignal,
      masterCheckMs: o.masterCheckMs ?? 1000,
    };
    this.stopped = new Promise((r) => (this.#resolve = r));
    const masterPid = Number(env.IBP_MASTER_PID ?? '0');
    this.listeners = listenFdsFromEnv({ env, onConnection: (s, name) => this.#onConnection(s, name) });
    if (this.#o.softStopSignal) process.on(this.#o.softStopSignal, this.#onSignal);
    if (this.#o.masterCheckMs > 0 && masterPid > 0) {
      this.#masterTimer = setInterval(() => {
        if (process.ppid !== masterPid) this.#stopAccepting('master-gone');
      }, this.#o.masterCheckMs);
      this.#masterTimer.unref();
    }
    if (this.listeners.length === 0) this.#stopAccepting('closed');
    else this.#armIdle();
  }

  /** Connections accepted so far. */
  get served(): number {
    return this.#served;
  }

  /** Connections open now. */
  get active(): number {
    return this.#active.size;
  }

  #onConnection(socket: Socket, name: string): void {
    this.#served++;
    this.#active.add(socket);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    socket.once('close', () => {
      this.#active.delete(socket);
      if (this.#reason !== undefined) this.#maybeDone();
      else this.#armIdle();
    });
    // Closing inside the connection callback stops libuv's accept loop: exactly max-use connections are taken.
    if (this.#o.maxUse > 0 && this.#served >= this.#o.maxUse) this.#stopAccepting('max-use');
    this.#o.onConnection(socket, name);
  }

  #armIdle(): void {
    if (this.#o.maxIdleMs <= 0 || this.#active.size > 0 || this.#reason !== undefined) return;
    this.#idleTimer = setTimeout(() => this.#stopAccepting('max-idle'), this.#o.maxIdleMs);
    this.#idleTimer.unref();
  }

  #stopAccepting(reason: InheritedServerStop): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    for (const l of this.listeners) l.server.close();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#masterTimer) clearInterval(this.#masterTimer);
    if (this.#o.softStopSignal) process.off(this.#o.softStopSignal, this.#onSignal);
    this.#maybeDone();
  }

  #maybeDone(): void {
    if (this.#reason !== undefined && this.#active.size === 0) this.#resolve(this.#reason);
  }

  /** Stops accepting and resolves when the open connections have ended. */
  close(): Promise<InheritedServerStop> {
    this.#stopAccepting('closed');
    return this.stopped;
  }

  /** Stops accepting and destroys the open connections. */
  destroy(): Promise<InheritedServerStop> {
    this.#stopAccepting('closed');
    for (const s of this.#active) s.destroy();
    return this.stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Starts an `InheritedServer` (see there). */
export function serveInheritedFds(o: InheritedServerOptions): InheritedServer {
  return new InheritedServer(o);
}
