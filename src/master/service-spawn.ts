/**
 * Starting one service process: argv without a shell of our making, the listen sockets at fds 3.. in the
 * systemd convention, the service's keys in the environment, stdout/stderr where `server-log` says.
 *
 * LISTEN_PID must be the service's own pid, which is unknown before the spawn. The process is therefore
 * started as `/bin/sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"' <server-command argv…>`: the
 * shell's pid is the service's pid after `exec`, and the configured strings are only ever arguments, never
 * shell text. Every process is started through `/bin/sh` this way (a missing program is then a plain exit 127,
 * throttled like any quick crash).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ListenSocket } from './listen-socket.js';
import type { ProcessEnd } from './restart-throttle.js';
import type { ServiceSettings } from './service-config.js';

const SHIM_LISTEN = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"';
const SHIM_PLAIN = 'exec "$0" "$@"';

/** `IBP_CF_<KEY>`: the environment variable a key is passed in (`max-idle` → `IBP_CF_MAX_IDLE`). */
export function cfEnvName(key: string): string {
  return `IBP_CF_${key.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** The environment of a service process (the master's own LISTEN_* are never passed on). */
export function serviceEnv(s: ServiceSettings, sockets: readonly ListenSocket[], base: NodeJS.ProcessEnv, masterPid: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of Object.keys(env)) if (k.startsWith('LISTEN_') || k.startsWith('IBP_CF_')) delete env[k];
  if (sockets.length > 0) {
    env.LISTEN_FDS = String(sockets.length);
    env.LISTEN_FDNAMES = sockets.map((k) => k.address.name).join(':');
  }
  if (s.readyNotify) env.IBP_NOTIFY_FD = String(3 + sockets.length);
  else delete env.IBP_NOTIFY_FD;
  env.IBP_MASTER_PID = String(masterPid);
  env.IBP_SERVICE_NAME = s.name;
  env.IBP_SERVICE_CF = s.file;
  env.IBP_SERVICE_CONFIG = JSON.stringify(s.keys);
  for (const [k, v] of Object.entries(s.keys)) env[cfEnvName(k)] = v;
  return env;
}

/** A running service process; `ended` resolves once, whether it exited, was killed or never started. */
export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  ended: Promise<ProcessEnd>;
  /** Set when the master asked it to stop (its end is then planned, never a crash). */
  stopRequested: boolean;
  /** Ready: at once (`server-ready = start`), or once it wrote `READY=1` to its notify fd. */
  ready: boolean;
  /** Resolves when it becomes ready (never, when it ends first). */
  readied: Promise<void>;
  /** The last `STATUS=` line it wrote to its notify fd (a service that fails at start says why there). */
  statusText?: string;
}

/** Starts one process of a service with `sockets` at fds 3.. (see the module comment). */
export function startServiceProcess(
  s: ServiceSettings,
  sockets: readonly ListenSocket[],
  stdio: readonly [StdioTarget, StdioTarget],
  env: NodeJS.ProcessEnv,
  cwd: string,
): ServiceProcess {
  const shim = sockets.length > 0 ? SHIM_LISTEN : SHIM_PLAIN;
  // server-ready = notify: a pipe after the listen sockets (IBP_NOTIFY_FD) the service writes READY=1 to.
  const child = spawn('/bin/sh', ['-c', shim, ...s.command], {
    cwd,
    env,
    stdio: ['ignore', stdio[0], stdio[1], ...sockets.map((k) => k.fd), ...(s.readyNotify ? ['pipe' as const] : [])],
  });
  const startedAt = Date.now();
  let markReady!: () => void;
  const readied = new Promise<void>((r) => (markReady = r));
  const proc: ServiceProcess = {
    child,
    pid: child.pid ?? 0,
    startedAt,
    ended: Promise.resolve({} as ProcessEnd),
    stopRequested: false,
    ready: false,
    readied,
  };
  const ready = (): void => {
    proc.ready = true;
    markReady();
  };
  if (!s.readyNotify) ready();
  else readNotifications(child.stdio[3 + sockets.length] as Readable | null, proc, ready);
  proc.ended = new Promise<ProcessEnd>((resolve) => {
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      resolve({ startedAt, endedAt: Date.now(), code, signal, planned: proc.stopRequested });
    };
    child.once('exit', (code, signal) => {
      const notify = s.readyNotify ? (child.stdio[3 + sockets.length] as Readable | null | undefined) : undefined;
      if (!notify || notify.readableEnded || notify.destroyed) {
        finish(code, signal);
        return;
      }
      // A STATUS= line written just before the exit may still be in the pipe: read it first. Children of the
      // service may hold the pipe's other end, so its EOF is waited for a moment only.
      const done = (): void => {
        clearTimeout(t);
        finish(code, signal);
        notify.destroy();
      };
      const t = setTimeout(done, 500);
      notify.once('end', done);
      notify.once('close', done);
      notify.resume();
    });
    child.on('error', () => {
      if (child.pid === undefined) finish(127, null);
    });
  });
  return proc;
}

/** Reads `KEY=VALUE` lines (sd_notify's format) from a notify pipe: `READY=1`, `STATUS=text`. */
function readNotifications(stream: Readable | null, proc: ServiceProcess, ready: () => void): void {
  if (!stream) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('error', () => undefined);
  stream.on('data', (d: string) => {
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line === 'READY=1') ready();
      else if (line.startsWith('STATUS=')) proc.statusText = line.slice('STATUS='.length);
    }
    if (partial.length > 65_536) partial = '';
  });
}

/** What a service process's stdout/stderr are given. */
export type StdioTarget = 'inherit' | number | Writable;

/**
 * Where a service's output goes (`server-log`): the master's own stdout/stderr, a file appended to
 * (`masterlog,PATH`), or `logger(1)` to syslog (`syslog,FACILITY`; output goes to the master's stderr if
 * `logger` cannot run). Opened per service runner, closed with it.
 */
export class ServiceOutput {
  #s: ServiceSettings;
  #log: Logger;
  #fd: number | undefined;
  #logger: ChildProcess | undefined;

  constructor(s: ServiceSettings, log: Logger) {
    this.#s = s;
    this.#log = log;
    this.#open();
  }

  #open(): void {
    const t = this.#s.log;
    if (t.kind === 'masterlog') {
      try {
        mkdirSync(dirname(t.path), { recursive: true });
        this.#fd = openSync(t.path, 'a', 0o640);
      } catch (err) {
        this.#log.error({ err, path: t.path }, 'cannot open the server-log file; service output goes to the master stderr');
      }
    } else if (t.kind === 'syslog') {
      const lg = spawn('logger', ['-t', this.#s.name, '-p', `${t.facility}.info`], { stdio: ['pipe', 'ignore', 'inherit'] });
      lg.on('error', (err) => {
        this.#log.error({ err }, 'cannot run logger(1); service output goes to the master stderr');
        this.#logger = undefined;
      });
      lg.once('exit', () => {
        if (this.#logger === lg) this.#logger = undefined;
      });
      lg.stdin?.on('error', () => undefined);
      this.#logger = lg;
    }
  }

  /** The stdout and stderr to give the next process. */
  stdio(): [StdioTarget, StdioTarget] {
    if (this.#fd !== undefined) return [this.#fd, this.#fd];
    const stdin = this.#logger?.stdin;
    if (stdin && !stdin.destroyed) return [stdin, stdin];
    return ['inherit', 'inherit'];
  }

  /** Reopens a `masterlog` file (after rotation); running processes keep writing to the old one. */
  reopen(): void {
    if (this.#s.log.kind !== 'masterlog') return;
    this.close();
    this.#open();
  }

  close(): void {
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch {
        /* already closed */
      }
      this.#fd = undefined;
    }
    if (this.#logger) {
      this.#logger.stdin?.end();
      this.#logger = undefined;
    }
  }
}
