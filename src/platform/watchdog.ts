/**
 * The first timeout layer (feature #53): a thread inside the worker that kills its own process when the current
 * transaction passes its deadline T, even while the JavaScript main thread is stuck in a loop (a timer on the
 * main thread would never fire then). The main thread arms and disarms it through shared memory: no messages.
 */
import { Worker } from 'node:worker_threads';

const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const deadline = new Float64Array(workerData.sab);
setInterval(() => {
  const d = deadline[0];
  if (d > 0 && Date.now() > d) {
    try { writeSync(2, 'ibas worker ' + process.pid + ': transaction passed its timeout T, watchdog kills the worker\\n'); } catch {}
    process.kill(process.pid, 'SIGKILL');
  }
}, workerData.tickMs);
`;

export class Watchdog {
  #sab = new SharedArrayBuffer(8);
  #deadline = new Float64Array(this.#sab);
  #thread: Worker;

  constructor(tickMs = 50) {
    this.#thread = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: { sab: this.#sab, tickMs } });
    this.#thread.unref();
  }

  /** The process dies if `disarm` is not called before `deadlineMs` (epoch ms). */
  arm(deadlineMs: number): void {
    this.#deadline[0] = deadlineMs;
  }

  disarm(): void {
    this.#deadline[0] = 0;
  }

  async close(): Promise<void> {
    this.disarm();
    await this.#thread.terminate();
  }
}
