/**
 * The long-polls waiting for a node's next published view. `GET /v1/view?index=V&wait=S` parks here when the
 * node's view is not newer than V; a publish for that node (distribute, download_config, a package change)
 * wakes it with 'published', the wait running out gives 'timeout' (→ 304), and a shutdown 'closed' (→ 304 at once).
 */

/** Why a wait ended. */
export type WaitOutcome = 'published' | 'timeout' | 'closed';

interface Waiter {
  node: string;
  finish: (outcome: WaitOutcome) => void;
}

/** A bound on parked long-polls, so a flood of them cannot exhaust the registry. */
export const MAX_WAITERS = 10_000;

/** Parked long-polls by node. */
export class ViewWaiters {
  readonly #byNode = new Map<string, Set<Waiter>>();
  #count = 0;
  #closed = false;

  /** How many long-polls are parked. */
  get size(): number {
    return this.#count;
  }

  /**
   * Parks until `node`'s view is published, `waitMs` passes, `signal` aborts (the caller went away) or
   * `closeAll()`. Resolves 'closed' at once after close or when `MAX_WAITERS` are parked already.
   */
  wait(node: string, waitMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.#closed || this.#count >= MAX_WAITERS) return Promise.resolve('closed');
    if (signal?.aborted) return Promise.resolve('closed');
    return new Promise<WaitOutcome>((resolve) => {
      let set = this.#byNode.get(node);
      if (set === undefined) {
        set = new Set();
        this.#byNode.set(node, set);
      }
      const onAbort = (): void => waiter.finish('closed');
      const timer = setTimeout(() => waiter.finish('timeout'), Math.max(0, waitMs));
      timer.unref();
      const waiter: Waiter = {
        node,
        finish: (outcome) => {
          const s = this.#byNode.get(node);
          if (!s?.delete(waiter)) return; // already finished
          this.#count -= 1;
          if (s.size === 0) this.#byNode.delete(node);
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      set.add(waiter);
      this.#count += 1;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes every long-poll of these nodes with 'published'. */
  notify(nodes: Iterable<string>): void {
    for (const node of nodes) {
      const set = this.#byNode.get(node);
      if (set === undefined) continue;
      for (const w of [...set]) w.finish('published');
    }
  }

  /** Ends every parked long-poll with 'closed'; later waits end at once. Idempotent. */
  closeAll(): void {
    this.#closed = true;
    for (const set of [...this.#byNode.values()]) for (const w of [...set]) w.finish('closed');
  }
}
