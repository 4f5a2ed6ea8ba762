/**
 * Entry of the ibms worker process (forked by the monitor). Talks to the monitor over the IPC channel:
 * sends `ready`/`failed`, takes `stop`. Exits when told to stop, on SIGTERM, or when the monitor is gone
 * (the channel closes). SIGUSR1 reopens its log files. SIGINT is left to the monitor (a Ctrl-C in a
 * terminal reaches both: the monitor then stops the worker in order).
 */
import { toIbpError } from '../core/errors.js';
import { closeAllLogs, flushAllLogs, installLogReopenOnSignal } from '../core/log.js';
import { runRegistryWorker, type RunningWorker } from './registry-worker.js';
import type { RegistrySettings } from './settings.js';
import type { MonitorToWorker, WorkerToMonitor } from './registry-monitor.js';

const settings = JSON.parse(process.env.IBP_IBMS_SETTINGS ?? 'null') as RegistrySettings | null;
if (!settings || typeof process.send !== 'function') {
  process.stderr.write('ibms worker: must be started by the ibms monitor\n');
  process.exit(2);
}
const port = Number(process.env.IBP_IBMS_PORT ?? settings.port);
const send = (m: WorkerToMonitor): void => {
  try {
    process.send?.(m);
  } catch {
    /* the monitor is gone: 'disconnect' stops us */
  }
};

installLogReopenOnSignal('SIGUSR1');
process.on('SIGINT', () => undefined);

let worker: RunningWorker | undefined;
let exiting = false;
async function stopAndExit(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  try {
    await worker?.stop();
  } finally {
    await closeAllLogs();
    process.exit(code);
  }
}

process.on('uncaughtException', (err) => {
  worker?.log.fatal({ err }, 'uncaught exception: worker exits (the monitor starts another)');
  void flushAllLogs().finally(() => process.exit(70));
});

process.on('message', (m: MonitorToWorker) => {
  if (m?.type === 'stop') void stopAndExit(0);
});
process.on('disconnect', () => void stopAndExit(0));
process.on('SIGTERM', () => void stopAndExit(0));

try {
  worker = await runRegistryWorker(settings, port);
  if (exiting) await worker.stop();
  else send({ type: 'ready', pid: process.pid, ip: worker.address.ip, port: worker.address.port });
} catch (err) {
  send({ type: 'failed', error: toIbpError(err).toJSON() });
  await closeAllLogs();
  process.exit(1);
}
