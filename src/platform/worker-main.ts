/** Entry of a forked ibas worker process (thin: parse the hand-over, build, wire IPC and signals). */
import type { Socket } from 'node:net';
import { toIbpError } from '../core/errors.js';
import { appLoggerFactory, closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { AppStatsRecorder } from './app-stats.js';
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

// Per-app transaction counts go to the master a few times a second (only when there are any) and at exit.
const STATS_FLUSH_MS = 250;
const stats = new AppStatsRecorder();
setInterval(() => {
  const apps = stats.take();
  if (apps) send({ type: 'stats', apps });
}, STATS_FLUSH_MS).unref();
function flushStats(): Promise<void> {
  const apps = stats.take();
  if (!apps || !process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 500);
    process.send!({ type: 'stats', apps } satisfies WorkerMessage, undefined, {}, () => {
      clearTimeout(t);
      resolve();
    });
  });
}

let worker: PlatformWorker;
async function exitWorker(code: number): Promise<void> {
  try {
    await worker?.close();
  } catch {
    /* exiting anyway */
  }
  await flushStats();
  await closeAllLogs();
  process.exit(code);
}

/** How long a worker that failed gives the error answer of its running transaction to leave before it exits. */
const FAIL_ANSWER_MS = 200;
let failing = false;
function failWorker(err: unknown, what: string): void {
  log.fatal({ err }, `${what} in worker; it will be replaced`);
  if (failing) return;
  failing = true;
  // The transaction running now gets an error answer when it has none yet (not in doubt), then the worker exits.
  const answered = worker?.failCurrent(err) ?? false;
  if (answered) setTimeout(() => void exitWorker(70), FAIL_ANSWER_MS);
  else void exitWorker(70);
}
process.on('uncaughtException', (err) => failWorker(err, 'uncaught exception'));
process.on('unhandledRejection', (err) => failWorker(err, 'unhandled rejection'));

try {
  worker = new PlatformWorker({
    settings,
    index,
    slot,
    log,
    appLog,
    send,
    onDrained: () => void exitWorker(0),
    onTransaction: (app, ms, ok) => stats.record(app, ms, ok),
  });
} catch (err) {
  const e = toIbpError(err);
  log.fatal({ err }, 'worker failed to start');
  send({ type: 'fatal', error: e.toJSON() });
  await closeAllLogs();
  process.exit(1);
}

process.on('message', (m: MasterMessage, handle?: unknown) => {
  if (m?.type === 'conn' && handle) {
    const socket = handle as Socket;
    worker.accept(socket);
    // FORK: this worker serves this one connection and exits when it closes (after the transaction running then).
    if (settings.mode === 'FORK') socket.once('close', () => worker.retire('stop'));
  } else if (m?.type === 'stop') worker.retire('stop');
  else if (m?.type === 'drain') worker.retire('upgrade');
});
process.on('disconnect', () => worker.retire('stop'));
send({ type: 'ready', pid: process.pid });
log.info({ pid: process.pid, slot }, 'worker ready');
