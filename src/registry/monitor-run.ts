/**
 * Running an ibms monitor in this process: the main and monitor logs, the pid file `run/ibms.pid`, the
 * address file `run/ibms.addr`, the worker, and the signals (SIGTERM/SIGINT: stop in order, a second one
 * kills the worker; SIGUSR1: reopen logs here and in the worker). Used by `ibms -a start` in both modes.
 */
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { RegistryMonitor } from './registry-monitor.js';
import { removeOwnFile, runningPid, type RegistrySettings } from './settings.js';

/** A running monitor. */
export interface RunningRegistry {
  monitor: RegistryMonitor;
  /** The address the worker listens on. */
  address: { ip: string; port: number };
  /** Resolves when the monitor has stopped (after a signal or `stop()`). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the monitor and its worker. Refuses when another ibms of this home runs.
 * @throws IbpError IBP_ERR_REGISTRY_ALREADY_RUNNING, or why the worker did not start.
 */
export async function runRegistryMonitor(settings: RegistrySettings): Promise<RunningRegistry> {
  const main = createLogger({ homeRoot: settings.homeRoot, output: settings.log.mainOutput, level: settings.log.mainLevel, name: 'ibms-main', base: { component: 'ibms-main' } });
  const log = createLogger({ homeRoot: settings.homeRoot, output: settings.log.monitorOutput, level: settings.log.monitorLevel, name: 'ibms-monitor', base: { component: 'ibms-monitor' } });
  const other = runningPid(settings.pidPath);
  if (other !== undefined && other !== process.pid) {
    await closeAllLogs();
    throw new IbpError('IBP_ERR_REGISTRY_ALREADY_RUNNING', `ibms is already running in ${settings.homeRoot} (pid ${other}, ${settings.pidPath}): stop it first (ibms -a stop)`);
  }
  main.info({ conf: settings.confPath, ip: settings.ip, port: settings.port, pid: process.pid }, 'ibms starting');
  writeFileAtomic(settings.pidPath, `${process.pid}\n`);
  const monitor = new RegistryMonitor({ settings, log });
  const uninstallReopen = installLogReopenOnSignal('SIGUSR1');
  const forwardUsr1 = (): void => monitor.signalWorker('SIGUSR1');
  process.on('SIGUSR1', forwardUsr1);
  let address: { ip: string; port: number };
  try {
    address = await monitor.start();
  } catch (err) {
    const e = toIbpError(err, 'IBP_ERR_REGISTRY_START');
    main.error({ err: e }, 'ibms did not start');
    await monitor.stop(true).catch(() => undefined);
    removeOwnFile(settings.pidPath);
    uninstallReopen();
    process.off('SIGUSR1', forwardUsr1);
    await closeAllLogs();
    throw e;
  }
  writeFileAtomic(settings.addrPath, `${process.pid} ${address.ip} ${address.port}\n`);
  main.info({ ip: address.ip, port: address.port, pid: process.pid, workerPid: monitor.workerPid }, 'ibms ready');

  let signals = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await monitor.stop();
      removeOwnFile(settings.addrPath);
      removeOwnFile(settings.pidPath);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGUSR1', forwardUsr1);
      uninstallReopen();
      log.info('monitor stopped');
      main.info('ibms stopped');
      await closeAllLogs();
      resolveDone();
    })();
    return stopping;
  };
  function onSignal(sig: NodeJS.Signals): void {
    signals += 1;
    if (signals === 1) {
      log.info({ signal: sig }, 'stop requested: the worker finishes what is in flight');
      void stop();
    } else {
      log.warn({ signal: sig }, 'second signal: killing the worker');
      void monitor.stop(true);
    }
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { monitor, address, done, stop };
}
