/**
 * Zero-downtime platform upgrade (`SIGUSR2`, feature #58), the old generation's half: start the next master
 * generation from the code and the config on disk, hand it the listen socket, and wait until its pool is ready.
 * The old master then drains (master-run.ts); see docs/platform.md for the sequence.
 *
 * - The new master is `node dist/src/platform/master-main.js`, spawned **detached** (its own session and process
 *   group), so the old one can exit without taking it along; its workers are its own children.
 * - The listening socket goes over as an extra stdio entry: it is fd {@link INHERITED_LISTEN_FD} in the new
 *   master, which listens on it with `{ fd }` once its first workers are ready (it never accepts a connection it
 *   cannot serve yet). Both generations then accept from the same kernel queue until the old one closes its copy.
 * - Readiness comes over the IPC channel (`ready` or `failed`, the messages `ibas -a start` also reads); the new
 *   master writes the pid file before it says `ready`.
 * - Failure — the config does not load, the new code does not start, a worker dies at start, the new master exits,
 *   or it is not ready within the timeout — leaves the old generation serving; a new master still running then is
 *   killed with its process group.
 *
 * The outcome is also written to `run/ibas_<ip>-<port>.upgrade` (JSON {@link UpgradeStatus}), which is how
 * `ibas -a restart_graceful` learns it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError, type IbpErrorData } from '../core/errors.js';
import { parseLogOutput } from '../core/log.js';
import type { PlatformSettings } from './settings.js';

const MASTER_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'master-main.js');

/** The listen socket's fd in the new master: after stdin, stdout, stderr and the IPC channel. */
export const INHERITED_LISTEN_FD = 4;
/** How long a new generation may take to be ready (override: env `IBP_UPGRADE_READY_TIMEOUT_MS`). */
export const DEFAULT_UPGRADE_READY_TIMEOUT_MS = 60_000;

/** What the old generation tells the new one (env `IBP_UPGRADE`, JSON). */
export interface UpgradeHandOver {
  homeRoot: string;
  /** The ibas.conf to read again (the new generation's config is the one on disk now). */
  configPath: string;
  /** The master that is handing over. */
  fromPid: number;
  /** Where the inherited socket listens: the config must still name this address. */
  ip: string;
  port: number;
  listenFd: number;
}

/** Where an upgrade stands, as the old master records it. */
export interface UpgradeStatus {
  state: 'starting' | 'switched' | 'failed';
  /** The master that received SIGUSR2. */
  fromPid: number;
  /** The new master (once spawned). */
  toPid?: number;
  /** Why it failed (`failed`). */
  error?: IbpErrorData;
  /** When this state was reached (ms since the epoch). */
  atMs: number;
}

/** `run/ibas_<ip>-<port>.upgrade`. */
export function upgradeStatusPathOf(s: Pick<PlatformSettings, 'homeRoot' | 'instanceName'>): string {
  return join(s.homeRoot, 'run', `${s.instanceName}.upgrade`);
}

/** The last recorded upgrade of an instance, or undefined (none, or unreadable). */
export function readUpgradeStatus(path: string): UpgradeStatus | undefined {
  try {
    const st = JSON.parse(readFileSync(path, 'utf8')) as UpgradeStatus;
    return typeof st === 'object' && st !== null && typeof st.state === 'string' && typeof st.fromPid === 'number' ? st : undefined;
  } catch {
    return undefined;
  }
}

export function writeUpgradeStatus(path: string, st: UpgradeStatus): void {
  writeFileAtomic(path, `${JSON.stringify(st)}\n`, { sync: false });
}

/** The ready timeout from the environment, else the default. */
export function upgradeReadyTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.IBP_UPGRADE_READY_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_UPGRADE_READY_TIMEOUT_MS;
}

export interface StartNextGenerationOptions {
  /** This (old) generation's settings: home, config path, listen address, main log. */
  settings: PlatformSettings;
  /** This process's fd of the listening socket. */
  listenFd: number;
  readyTimeoutMs: number;
  log: Logger;
  /** Aborting kills the new generation if it is not ready yet (a stop during the upgrade). */
  signal?: AbortSignal;
  /** Told the new master's pid as soon as it is spawned. */
  onSpawned?: (pid: number) => void;
}

type NextOutcome = { ok: true; pid: number } | { ok: false; error: IbpError; kill: boolean };

/**
 * Starts the next master generation and resolves with its pid once its pool is ready (it then accepts on the
 * shared socket and has written the pid file).
 * @throws IbpError `IBP_ERR_PLATFORM_UPGRADE`, the cause in the message; no new generation is left running.
 */
export async function startNextGeneration(o: StartNextGenerationOptions): Promise<{ pid: number }> {
  const s = o.settings;
  const handOver: UpgradeHandOver = { homeRoot: s.homeRoot, configPath: s.configPath, fromPid: process.pid, ip: s.ip, port: s.port, listenFd: INHERITED_LISTEN_FD };
  const env: NodeJS.ProcessEnv = { ...process.env, IBP_HOME: s.homeRoot, IBP_UPGRADE: JSON.stringify(handOver) };
  delete env.IBP_MASTER;
  // The new master's own stdout/stderr (a crash trace, say) go to the main log file, as a daemon's do.
  const main = parseLogOutput(s.log.mainOutput, s.homeRoot);
  let outFd: number | 'ignore' = 'ignore';
  if (main.kind === 'file') {
    mkdirSync(dirname(main.path), { recursive: true });
    outFd = openSync(main.path, 'a');
  }
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [MASTER_MAIN], { detached: true, stdio: ['ignore', outFd, outFd, 'ipc', o.listenFd], env });
  } finally {
    if (typeof outFd === 'number') closeSync(outFd);
  }
  if (child.pid !== undefined) o.onSpawned?.(child.pid);
  o.log.info({ newPid: child.pid }, 'new generation spawned; waiting for its pool to be ready');
  const outcome = await new Promise<NextOutcome>((resolve) => {
    let settled = false;
    const settle = (r: NextOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const fail = (message: string, kill: boolean, data?: IbpErrorData): void =>
      settle({ ok: false, kill, error: new IbpError('IBP_ERR_PLATFORM_UPGRADE', message, data ? { cause: IbpError.fromJSON(data) } : {}) });
    const timer = setTimeout(() => fail(`the new generation (pid ${child.pid}) was not ready within ${o.readyTimeoutMs} ms`, true), o.readyTimeoutMs);
    const onAbort = (): void => fail('stopped while the new generation was starting', true);
    if (o.signal?.aborted) onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: { type?: string; pid?: number; error?: IbpErrorData }) => {
      if (m?.type === 'ready') settle({ ok: true, pid: m.pid ?? child.pid! });
      else if (m?.type === 'failed') fail(`the new generation failed to start: ${m.error?.code}: ${m.error?.message}`, false, m.error);
    });
    child.once('exit', (code, signal) => fail(`the new generation exited (code ${code}, signal ${signal}) before it was ready`, true));
    child.once('error', (err) => fail(`the new generation could not be started: ${err.message}`, false));
  });
  if (outcome.ok) {
    // Cut every tie: the new generation must outlive this process.
    if (child.connected) child.disconnect();
    child.unref();
    return { pid: outcome.pid };
  }
  if (outcome.kill && child.pid !== undefined) killGroup(child.pid);
  if (child.connected) child.disconnect();
  child.unref();
  throw outcome.error;
}

/** SIGKILL to a process group (the new master and the workers it forked); quiet when it is gone. */
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
