/**
 * Running the agent in this process, as `ibcmd -a start` does (both modes): main log, pid file, server,
 * signals. SIGTERM/SIGINT stop it gracefully (a second one at once); SIGUSR1 reopens the logs.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError } from '../core/errors.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { RcmdServer } from './agent-server.js';
import type { RcmdSettings } from './settings.js';

/** The pid recorded in a pid file if that process is alive, else undefined. */
export function runningRcmdPid(pidPath: string): number | undefined {
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

/** The address a running agent recorded in its pid file (line 2), if it runs. */
export function runningRcmdAddress(pidPath: string): string | undefined {
  if (runningRcmdPid(pidPath) === undefined) return undefined;
  try {
    const line = readFileSync(pidPath, 'utf8').split('\n')[1]?.trim();
    return line !== undefined && line.length > 0 ? line : undefined;
  } catch {
    return undefined;
  }
}

/** A started agent. */
export interface RunningRcmd {
  address: { ip: string; port: number };
  /** Resolves once the agent has stopped. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/** How long a graceful stop waits for requests in flight before killing their commands. */
export const STOP_GRACE_MS = 10_000;

/**
 * Starts the agent: refuses when another one runs for this home, listens, writes the pid file, installs
 * the signal handlers.
 * @throws IbpError IBP_ERR_RCMD_ALREADY_RUNNING, IBP_ERR_RCMD_SECRET, IBP_ERR_RCMD_START, IBP_ERR_LOG_*.
 */
export async function runRcmdDaemon(settings: RcmdSettings): Promise<RunningRcmd> {
  const other = runningRcmdPid(settings.pidPath);
  if (other !== undefined && other !== process.pid) {
    throw new IbpError('IBP_ERR_RCMD_ALREADY_RUNNING', `ibcmd is already running for ${settings.homeRoot} (pid ${other}, ${settings.pidPath})`);
  }
  const log = createLogger({
    homeRoot: settings.homeRoot,
    output: settings.mainOutput,
    level: settings.mainLevel,
    name: 'ibcmd',
    base: { component: 'ibcmd' },
  });
  let server: RcmdServer;
  try {
    server = new RcmdServer({ settings, log });
    await server.listen();
  } catch (err) {
    log.error({ err }, 'ibcmd did not start');
    await closeAllLogs();
    throw err;
  }
  // line 1 the pid, line 2 the bound address (the config may say port 0)
  writeFileAtomic(settings.pidPath, `${process.pid}\n${server.address.ip}:${server.address.port}\n`);
  const uninstallLogReopen = installLogReopenOnSignal('SIGUSR1');
  const reopenAudit = (): void => server.auditLog.reopen();
  process.on('SIGUSR1', reopenAudit);
  log.info({ ip: server.address.ip, port: server.address.port, whitelist: settings.whitelist.length }, 'ibcmd ready');

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await server.close(STOP_GRACE_MS);
      try {
        if (runningRcmdPid(settings.pidPath) === process.pid) unlinkSync(settings.pidPath);
      } catch {
        /* already gone */
      }
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGUSR1', reopenAudit);
      uninstallLogReopen();
      log.info('ibcmd stopped');
      await closeAllLogs();
      resolveDone();
    })();
    return stopping;
  };
  let signals = 0;
  function onSignal(sig: NodeJS.Signals): void {
    signals++;
    if (signals === 1) {
      log.info({ signal: sig }, 'graceful stop requested');
      void stop();
    } else {
      log.warn({ signal: sig }, 'second signal: stopping now');
      server.destroy();
    }
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { address: server.address, done, stop };
}
