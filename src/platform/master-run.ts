/** Running an ibas master in this process: logs, pid file, pool, signals. Used by `ibas -a start` (both modes). */
import { readFileSync, unlinkSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError } from '../core/errors.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import type { PlatformSettings } from './settings.js';
import { WorkerPool } from './worker-pool.js';

/** The pid recorded in a pid file if that process is alive, else undefined. */
export function runningPid(pidPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidPath, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

export interface RunningMaster {
  pool: WorkerPool;
  /** Resolves when the master has stopped (after a signal or stop()). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the master: refuses when another master of this instance runs, fills the pool, writes the pid file,
 * and stops gracefully on SIGTERM/SIGINT (a second signal kills the workers at once).
 */
export async function runMaster(settings: PlatformSettings): Promise<RunningMaster> {
  const other = runningPid(settings.pidPath);
  if (other !== undefined && other !== process.pid) {
    throw new IbpError('IBP_ERR_PLATFORM_ALREADY_RUNNING', `ibas ${settings.instanceName} is already running (pid ${other}, ${settings.pidPath})`);
  }
  const log = createLogger({
    homeRoot: settings.homeRoot,
    output: settings.log.monitorOutput,
    level: settings.log.monitorLevel,
    name: 'ibas-monitor',
    base: { component: 'ibas-monitor' },
  });
  const pool = new WorkerPool({ settings, log });
  // SIGUSR1 to the master reopens its log files and is passed on to every worker (each reopens its own).
  const uninstallLogReopen = installLogReopenOnSignal('SIGUSR1');
  const forwardUsr1 = (): void => pool.signalWorkers('SIGUSR1');
  process.on('SIGUSR1', forwardUsr1);
  const uninstallReopen = (): void => {
    uninstallLogReopen();
    process.off('SIGUSR1', forwardUsr1);
  };
  try {
    await pool.start();
  } catch (err) {
    await pool.stop(1000).catch(() => undefined);
    uninstallReopen();
    await closeAllLogs();
    throw err;
  }
  writeFileAtomic(settings.pidPath, `${process.pid}\n`);
  let signals = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = async (): Promise<void> => {
    await pool.stop();
    try {
      if (runningPid(settings.pidPath) === process.pid) unlinkSync(settings.pidPath);
    } catch {
      /* already gone */
    }
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    uninstallReopen();
    log.info('master stopped');
    await closeAllLogs();
    resolveDone();
  };
  function onSignal(sig: NodeJS.Signals): void {
    signals++;
    if (signals === 1) {
      log.info({ signal: sig }, 'graceful stop requested');
      void stop();
    } else {
      log.warn({ signal: sig }, 'second signal: stopping now');
      void pool.stop(0);
    }
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { pool, done, stop };
}
