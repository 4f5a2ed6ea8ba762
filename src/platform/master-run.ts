/**
 * Running an ibas master in this process: logs, pid file, bulletin board, pool, signals. Used by `ibas -a start`
 * (both modes) and by a new generation started on SIGUSR2 (master-main.ts).
 *
 * Signals: SIGTERM/SIGINT graceful stop (a second one stops at once); SIGUSR1 reopens the log files (passed on to
 * every worker); SIGUSR2 zero-downtime upgrade: a new generation starts from the code and config on disk and
 * takes over the listen socket (upgrade.ts); once it is ready this generation stops accepting, moves its
 * connections on and exits; if it fails, this generation keeps serving.
 *
 * Each generation has its own bulletin board file, `run/ibas_<ip>-<port>.<pid>.board`, that its workers write;
 * `run/ibas_<ip>-<port>.board` is a hard link to the board of the newest ready generation (what `ibas -s bbstat`
 * reads). During an upgrade the two generations thus never write over each other's slots.
 */
import { linkSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { RegistryHeartbeat } from './registry-heartbeat.js';
import type { PlatformSettings } from './settings.js';
import { startNextGeneration, upgradeReadyTimeoutMs, upgradeStatusPathOf, writeUpgradeStatus } from './upgrade.js';
import { WorkerPool } from './worker-pool.js';

/** The pid recorded in a pid file if that process is alive, else undefined. */
export function runningPid(pidPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidPath, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) ? pid : undefined;
}

/**
 * True when process `pid` exists and has not exited. A zombie (exited, not yet reaped: a daemon's parent is init,
 * which may reap late) counts as gone; on Linux that is read from /proc/<pid>/stat.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    // Gone in between (Linux); elsewhere there is no /proc and kill(pid, 0) is all there is.
    return !(process.platform === 'linux' && (err as NodeJS.ErrnoException).code === 'ENOENT');
  }
}

export interface RunMasterOptions {
  /** A new generation (SIGUSR2): the listen socket inherited from the previous one, and that master's pid. */
  inherited?: { listenFd: number; fromPid: number };
  /** How long a new generation may take to be ready; default env `IBP_UPGRADE_READY_TIMEOUT_MS`, else 60 s. */
  upgradeReadyTimeoutMs?: number;
}

export interface RunningMaster {
  pool: WorkerPool;
  /** Resolves when this master has stopped (after a signal or stop()), or handed over to a new generation. */
  done: Promise<void>;
  /** Graceful stop. */
  stop(): Promise<void>;
  /**
   * What SIGUSR2 does: resolves with the new master's pid once it is ready (this master then drains and
   * `done` resolves when it has); rejects with `IBP_ERR_PLATFORM_UPGRADE` when the new generation could not
   * start, and this master keeps serving. A call while an upgrade is under way joins it.
   */
  upgrade(): Promise<number>;
}

/** This generation's board file: `ibas_<ip>-<port>.<pid>.board` next to the instance's board link. */
function generationBoardPath(boardPath: string, pid: number): string {
  return boardPath.replace(/\.board$/, '') + `.${pid}.board`;
}

/** Removes generation boards of masters that are gone (killed ones never removed theirs). */
function removeStaleBoards(boardPath: string): void {
  const dir = dirname(boardPath);
  const prefix = basename(boardPath).replace(/\.board$/, '') + '.';
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.board')) continue;
    const pid = Number(name.slice(prefix.length, -'.board'.length));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isProcessAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* gone already */
    }
  }
}

/** Points the instance's board name at this generation's board (atomically: link under a temp name, rename). */
function publishBoard(genPath: string, boardPath: string): void {
  const tmp = `${boardPath}.${process.pid}.tmp`;
  try {
    unlinkSync(tmp);
  } catch {
    /* no leftover */
  }
  linkSync(genPath, tmp);
  renameSync(tmp, boardPath);
}

/**
 * Starts the master: refuses when another master of this instance runs (unless it is the generation handing
 * over to this one), fills the pool, writes the pid file, and installs the signal handlers described above.
 */
export async function runMaster(settings: PlatformSettings, options: RunMasterOptions = {}): Promise<RunningMaster> {
  const other = runningPid(settings.pidPath);
  if (other !== undefined && other !== process.pid && other !== options.inherited?.fromPid) {
    throw new IbpError('IBP_ERR_PLATFORM_ALREADY_RUNNING', `ibas ${settings.instanceName} is already running (pid ${other}, ${settings.pidPath})`);
  }
  const log = createLogger({
    homeRoot: settings.homeRoot,
    output: settings.log.monitorOutput,
    level: settings.log.monitorLevel,
    name: 'ibas-monitor',
    base: { component: 'ibas-monitor' },
  });
  removeStaleBoards(settings.boardPath);
  const genBoard = generationBoardPath(settings.boardPath, process.pid);
  const genSettings: PlatformSettings = Object.freeze({ ...settings, boardPath: genBoard });
  const pool = new WorkerPool({ settings: genSettings, log, listenFd: options.inherited?.listenFd });
  // SIGUSR1 to the master reopens its log files and is passed on to every worker (each reopens its own).
  const uninstallLogReopen = installLogReopenOnSignal('SIGUSR1');
  const forwardUsr1 = (): void => pool.signalWorkers('SIGUSR1');
  process.on('SIGUSR1', forwardUsr1);
  const removeGenBoard = (): void => {
    try {
      unlinkSync(genBoard);
    } catch {
      /* never created */
    }
  };
  try {
    await pool.start();
  } catch (err) {
    await pool.stop(1000).catch(() => undefined);
    removeGenBoard();
    uninstallLogReopen();
    process.off('SIGUSR1', forwardUsr1);
    await closeAllLogs();
    throw err;
  }
  publishBoard(genBoard, settings.boardPath);
  writeFileAtomic(settings.pidPath, `${process.pid}\n`);
  if (options.inherited) log.info({ fromPid: options.inherited.fromPid }, 'new generation ready on the inherited listen socket');
  // Registration with the registry (ibms -s sessions): best effort, never on the transaction path.
  const heartbeat = new RegistryHeartbeat({ settings, log, boardPath: genBoard });
  heartbeat.start();

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let finishing: Promise<void> | undefined;
  /** Runs `how` (stop or drain) once, then releases what this master holds. */
  const finish = (how: () => Promise<void>, what: string): Promise<void> => {
    finishing ??= (async () => {
      await heartbeat.stop();
      await how();
      try {
        if (runningPid(settings.pidPath) === process.pid) unlinkSync(settings.pidPath);
      } catch {
        /* already gone */
      }
      // The instance's board link stays (as a stopped master's board always did); this generation's name goes.
      removeGenBoard();
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGUSR2', onUpgradeSignal);
      process.off('SIGUSR1', forwardUsr1);
      uninstallLogReopen();
      log.info(what);
      await closeAllLogs();
      resolveDone();
    })();
    return finishing;
  };
  const stop = (): Promise<void> => finish(() => pool.stop(), 'master stopped');

  const readyTimeoutMs = options.upgradeReadyTimeoutMs ?? upgradeReadyTimeoutMs();
  const statusPath = upgradeStatusPathOf(settings);
  let upgrading: Promise<number> | undefined;
  let abortUpgrade: AbortController | undefined;
  const upgrade = (): Promise<number> => {
    if (upgrading) return upgrading;
    if (finishing) return Promise.reject(new IbpError('IBP_ERR_PLATFORM_UPGRADE', 'the master is stopping; no graceful restart'));
    abortUpgrade = new AbortController();
    const signal = abortUpgrade.signal;
    const attempt = (async (): Promise<number> => {
      const fromPid = process.pid;
      writeUpgradeStatus(statusPath, { state: 'starting', fromPid, atMs: Date.now() });
      log.info('graceful restart: starting a new generation from the code and config on disk');
      let newPid: number | undefined;
      try {
        const fd = pool.listenFd;
        if (fd === undefined) throw new IbpError('IBP_ERR_PLATFORM_UPGRADE', 'this master holds no listen socket to hand over');
        const onSpawned = (pid: number): void => {
          newPid = pid;
          writeUpgradeStatus(statusPath, { state: 'starting', fromPid, toPid: pid, atMs: Date.now() });
        };
        newPid = (await startNextGeneration({ settings, listenFd: fd, readyTimeoutMs, log, signal, onSpawned })).pid;
      } catch (err) {
        const e = toIbpError(err, 'IBP_ERR_PLATFORM_UPGRADE');
        log.error({ err: e }, 'graceful restart failed; this generation keeps serving');
        writeUpgradeStatus(statusPath, { state: 'failed', fromPid, toPid: newPid, error: e.toJSON(), atMs: Date.now() });
        upgrading = undefined;
        throw e;
      }
      writeUpgradeStatus(statusPath, { state: 'switched', fromPid, toPid: newPid, atMs: Date.now() });
      log.info({ newPid }, 'new generation ready: this generation stops accepting, moves its connections on and exits');
      void finish(() => pool.drain(), 'master handed over to the new generation and exited');
      return newPid;
    })();
    upgrading = attempt;
    return attempt;
  };
  function onUpgradeSignal(): void {
    if (upgrading) log.warn('SIGUSR2 while a graceful restart is under way: ignored');
    upgrade().catch(() => undefined);
  }

  let signals = 0;
  function onSignal(sig: NodeJS.Signals): void {
    signals++;
    if (signals === 1) {
      log.info({ signal: sig }, finishing ? 'stop requested while handing over: finishing the hand-over' : 'graceful stop requested');
      abortUpgrade?.abort();
      void stop();
    } else {
      log.warn({ signal: sig }, 'second signal: stopping now');
      void pool.stop(0);
    }
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGUSR2', onUpgradeSignal);
  return { pool, done, stop, upgrade };
}

