/**
 * Running one ibas generation in this process: the worker pool (which accepts on the listen socket and hands each
 * connection to an idle worker), its logs, bulletin board, statistics and registry heartbeat. The process is a
 * service of the generic master (src/master/, started by `ibas -a start`, see ibas-master.ts): the master owns
 * the listen socket (inherited as LISTEN_FDS fd 3), the pid file and its lock, the restart throttle, and the
 * zero-downtime upgrade (its soft restart starts the next generation on the same socket, then stops this one).
 *
 * Signals: SIGTERM = this generation is replaced or the platform stops: stop accepting, let the queued connections
 * go to workers, retire every worker the recycle way (GOAWAY; a request already on the wire is served), exit; a
 * second SIGTERM stops at once. SIGUSR1 reopens the log files (passed on to every worker). SIGUSR2 (an operator's
 * habit: it was the upgrade signal of the old standalone ibas) is passed on to the master, which upgrades.
 * SIGINT is ignored: Ctrl-C reaches the whole process group, and the master decides how its services stop.
 *
 * Each generation has its own bulletin board file, `run/ibas_<ip>-<port>.<pid>.board`, that its workers write;
 * `run/ibas_<ip>-<port>.board` is a hard link to the board of the newest ready generation (what `ibas -s bbstat`
 * reads). During an upgrade the two generations thus never write over each other's slots.
 */
import { linkSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { RegistryHeartbeat } from './registry-heartbeat.js';
import type { PlatformSettings } from './settings.js';
import { WorkerPool } from './worker-pool.js';

/** How often a generation checks that its master is still its parent. */
const MASTER_CHECK_MS = 1000;

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

export interface RunGenerationOptions {
  /** The listen socket inherited from the master (LISTEN_FDS): the pool listens on it once its workers are ready. */
  listenFd: number;
  /** The master's pid (IBP_MASTER_PID): SIGUSR2 goes there; the generation drains when it is no longer the parent. */
  masterPid?: number;
}

export interface RunningGeneration {
  pool: WorkerPool;
  /** Resolves when this generation has stopped (after SIGTERM, stop() or the master's death). */
  done: Promise<void>;
  /** Drains and stops (what SIGTERM does). */
  stop(): Promise<void>;
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
 * Starts a generation on the inherited socket: fills the pool (the pool listens once its first workers are ready),
 * publishes its board and installs the signal handlers described above. Resolves when it serves.
 */
export async function runGeneration(settings: PlatformSettings, options: RunGenerationOptions): Promise<RunningGeneration> {
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
  const pool = new WorkerPool({ settings: genSettings, log, listenFd: options.listenFd });
  // SIGUSR1 reopens this process's log files and is passed on to every worker (each reopens its own).
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
  log.info({ masterPid: options.masterPid }, 'generation ready on the listen socket inherited from the master');
  // Registration with the registry (ibms -s sessions): best effort, never on the transaction path.
  const heartbeat = new RegistryHeartbeat({ settings, log, boardPath: genBoard });
  heartbeat.start();

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let finishing: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    finishing ??= (async () => {
      clearInterval(masterCheck);
      await heartbeat.stop();
      await pool.drain();
      // The instance's board link stays (as a stopped platform's board always did); this generation's name goes.
      removeGenBoard();
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', ignore);
      process.off('SIGUSR2', onUsr2);
      process.off('SIGUSR1', forwardUsr1);
      uninstallLogReopen();
      log.info('generation stopped');
      await closeAllLogs();
      resolveDone();
    })();
    return finishing;
  };

  let terms = 0;
  function onTerm(): void {
    terms++;
    if (terms === 1) {
      log.info('SIGTERM: this generation stops accepting, moves its connections on and exits');
      void stop();
    } else {
      log.warn('second SIGTERM: stopping now');
      void pool.stop(0);
    }
  }
  function ignore(): void {
    /* the master decides */
  }
  function onUsr2(): void {
    if (options.masterPid === undefined) return;
    log.info({ masterPid: options.masterPid }, 'SIGUSR2: passed on to the master (graceful restart)');
    try {
      process.kill(options.masterPid, 'SIGUSR2');
    } catch (err) {
      log.warn({ err }, 'cannot signal the master');
    }
  }
  // A master killed with SIGKILL cannot stop its services: a generation whose parent is gone stops by itself.
  const masterCheck = setInterval(() => {
    if (options.masterPid !== undefined && process.ppid !== options.masterPid) {
      log.warn({ masterPid: options.masterPid }, 'the master is gone: stopping');
      void stop();
    }
  }, MASTER_CHECK_MS);
  masterCheck.unref();
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', ignore);
  process.on('SIGUSR2', onUsr2);
  return { pool, done, stop };
}
