/** Entry of a forked ibas worker process (thin: parse the hand-over, build, wire IPC and signals). */
import type { Socket } from 'node:net';
import { toIbpError } from '../core/errors.js';
import { appLoggerFactory, closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import type { MasterMessage, WorkerMessage } from './ipc.js';
import type { PlatformSettings } from './settings.js';
import { PlatformWorker } from './worker.js';

interface HandOver {
  settings: PlatformSettings;
  index: number;
  slot: number;
}

const handOver = JSON.parse(process.env.IBP_WORKER ?? 'null') as HandOver | null;
if (!handOver || typeof process.send !== 'function') {
  process.stderr.write('worker-main: must be started by the ibas master\n');
  process.exit(2);
}
const { settings, index, slot } = handOver;
const log = createLogger({
  homeRoot: settings.homeRoot,
  output: settings.log.workerOutput,
  level: settings.log.workerLevel,
  name: 'ibas-worker',
  vars: { d: index },
  base: { component: 'ibas-worker', worker: index },
});
const appLog = appLoggerFactory({ homeRoot: settings.homeRoot, output: settings.log.appOutput, level: settings.log.appLevel });
installLogReopenOnSignal('SIGUSR1');
// Ctrl-C in a terminal reaches the whole process group: the master decides how workers stop.
process.on('SIGINT', () => undefined);

const send = (m: WorkerMessage): void => {
  if (process.connected) process.send!(m);
};

let worker: PlatformWorker;
async function exitWorker(code: number): Promise<void> {
  try {
    await worker?.close();
  } catch {
    /* exiting anyway */
  }
  await closeAllLogs();
  process.exit(code);
}

process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception in worker; it will be replaced');
  void exitWorker(70);
});
process.on('unhandledRejection', (err) => {
  log.fatal({ err }, 'unhandled rejection in worker; it will be replaced');
  void exitWorker(70);
});

try {
  worker = new PlatformWorker({
    settings,
    index,
    slot,
    log,
    appLog,
    send,
    onDrained: () => void exitWorker(0),
  });
} catch (err) {
  const e = toIbpError(err);
  log.fatal({ err }, 'worker failed to start');
  send({ type: 'fatal', error: e.toJSON() });
  await closeAllLogs();
  process.exit(1);
}

process.on('message', (m: MasterMessage, handle?: unknown) => {
  if (m?.type === 'conn' && handle) worker.accept(handle as Socket);
  else if (m?.type === 'stop') worker.retire('stop');
});
process.on('disconnect', () => worker.retire('stop'));
send({ type: 'ready', pid: process.pid });
log.info({ pid: process.pid, slot }, 'worker ready');
