/**
 * The agent's retry schedule after a failed exchange with the registry: 100 ms, doubling, capped at 2 s,
 * back to the start after a success. The cap is what bounds the resync time: once the registry is back,
 * the agent's next attempt comes at most 2 s later.
 */

/** First delay after a failure. */
export const AGENT_RETRY_FIRST_MS = 100;
/** Largest delay between two attempts. */
export const AGENT_RETRY_MAX_MS = 2000;

/**
 * Exponential backoff with a cap.
 * @example
 * const b = new RetryBackoff();
 * b.next(); // 100
 * b.next(); // 200 … 400, 800, 1600, 2000, 2000, …
 * b.reset();
 */
export class RetryBackoff {
  readonly #firstMs: number;
  readonly #maxMs: number;
  #nextMs: number;

  constructor(firstMs = AGENT_RETRY_FIRST_MS, maxMs = AGENT_RETRY_MAX_MS) {
    if (!(firstMs > 0) || !(maxMs >= firstMs)) {
      throw new RangeError(`RetryBackoff: need 0 < firstMs <= maxMs, got ${firstMs}, ${maxMs}`);
    }
    this.#firstMs = firstMs;
    this.#maxMs = maxMs;
    this.#nextMs = firstMs;
  }

  /** The delay before the next attempt; each call doubles the following one, up to the cap. */
  next(): number {
    const d = this.#nextMs;
    this.#nextMs = Math.min(this.#nextMs * 2, this.#maxMs);
    return d;
  }

  /** After a success: the next failure waits `firstMs` again. */
  reset(): void {
    this.#nextMs = this.#firstMs;
  }
}
