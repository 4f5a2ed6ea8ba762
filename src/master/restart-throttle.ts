/**
 * The restart throttle of a service (SPEC §8.4 #125, Postfix's "throttle"): a process that crashes right after
 * it started is restarted after a delay that doubles with every such crash in a row (min, 2·min, 4·min, … up
 * to max), so a broken service costs a few starts a minute instead of a tight loop. A process that ran for a
 * while before crashing, or that exited normally (status 0: `max-use`, `max-idle`, soft stop), resets the
 * throttle and is restarted at once.
 */

/** A process crashing within this time of its start is a quick crash. */
export const QUICK_CRASH_MS = 2000;

export interface RestartThrottleOptions {
  /** Delay after the first quick crash. */
  minMs: number;
  /** Cap of the delay. */
  maxMs: number;
  /** Quick-crash window (default QUICK_CRASH_MS). */
  quickMs?: number;
}

/** How a service process ended, as the throttle sees it. */
export interface ProcessEnd {
  startedAt: number;
  endedAt: number;
  /** Exit status (null when killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the master asked it to stop (soft stop, reload): never a crash. */
  planned?: boolean;
}

/** A crash is an end the master did not ask for with a non-zero status or by a signal. */
export function isCrash(end: ProcessEnd): boolean {
  return !end.planned && (end.code !== 0 || end.signal !== null);
}

/**
 * Counts quick crashes in a row and gives the delay before the next start.
 * @example
 * const t = new RestartThrottle({ minMs: 100, maxMs: 30_000 });
 * t.delayAfter({ startedAt: 0, endedAt: 10, code: 1, signal: null }); // 100
 * t.delayAfter({ startedAt: 200, endedAt: 210, code: 1, signal: null }); // 200
 */
export class RestartThrottle {
  #minMs: number;
  #maxMs: number;
  #quickMs: number;
  #quickCrashes = 0;
  #notBefore = 0;

  constructor(o: RestartThrottleOptions) {
    if (!(o.minMs > 0) || !(o.maxMs >= o.minMs)) throw new RangeError(`bad throttle ${o.minMs}..${o.maxMs} ms`);
    this.#minMs = o.minMs;
    this.#maxMs = o.maxMs;
    this.#quickMs = o.quickMs ?? QUICK_CRASH_MS;
  }

  /** Quick crashes in a row so far. */
  get quickCrashes(): number {
    return this.#quickCrashes;
  }

  /** True while a throttled restart is pending (no start before `notBefore`). */
  throttled(now: number = Date.now()): boolean {
    return now < this.#notBefore;
  }

  /** The time before which the service should not start again. */
  get notBefore(): number {
    return this.#notBefore;
  }

  /** Records an end and returns the delay (ms) before the next start: 0 unless it was a quick crash. */
  delayAfter(end: ProcessEnd): number {
    if (!isCrash(end) || end.endedAt - end.startedAt >= this.#quickMs) {
      this.#quickCrashes = 0;
      return 0;
    }
    this.#quickCrashes++;
    const delay = Math.min(this.#minMs * 2 ** Math.min(this.#quickCrashes - 1, 40), this.#maxMs);
    this.#notBefore = Math.max(this.#notBefore, end.endedAt + delay);
    return delay;
  }

  /** Forgets the crash history (a reload). */
  reset(): void {
    this.#quickCrashes = 0;
    this.#notBefore = 0;
  }
}
