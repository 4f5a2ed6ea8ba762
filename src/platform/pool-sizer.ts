/**
 * The DYNAMIC_WORKERPOOL rule, one adjustment cycle at a time (the original's `min_idle_count`,
 * `max_idle_count`, `create_interval`, `destroy_interval`, `max_count`). Pure, so the rule is tested apart
 * from processes.
 *
 * - Grow while the spare workers (idle + starting) are fewer than `min_idle_count` plus the connections
 *   waiting for a worker: at most `create_interval` per cycle, never past `max_count` workers.
 * - Shrink while more than `max_idle_count` workers are idle and nothing waits or starts: at most
 *   `destroy_interval` per cycle, down to `max_idle_count` idle (so never below `min_idle_count`).
 */
import type { DynamicPoolSettings } from './settings.js';

/** The pool as one cycle sees it (workers that are retiring are not counted at all). */
export interface PoolCounts {
  idle: number;
  busy: number;
  /** Forked, not ready yet. */
  starting: number;
  /** Connections waiting in the accept queue. */
  waiting: number;
}

/** What one cycle does. At most one of the two is non-zero. */
export interface PoolAdjustment {
  create: number;
  destroy: number;
}

/** The adjustment for one cycle. @example planAdjustment({ idle: 0, busy: 3, starting: 0, waiting: 2 }, dyn, 10) */
export function planAdjustment(c: PoolCounts, d: DynamicPoolSettings, maxCount: number): PoolAdjustment {
  const live = c.idle + c.busy + c.starting;
  const spare = c.idle + c.starting;
  const wanted = d.minIdleCount + c.waiting;
  if (spare < wanted) {
    const create = Math.max(0, Math.min(d.createInterval, wanted - spare, maxCount - live));
    return { create, destroy: 0 };
  }
  if (c.waiting === 0 && c.starting === 0 && c.idle > d.maxIdleCount) {
    return { create: 0, destroy: Math.min(d.destroyInterval, c.idle - d.maxIdleCount) };
  }
  return { create: 0, destroy: 0 };
}

/** Workers a dynamic pool starts with: `min_idle_count`, at least 1, at most `max_count`. */
export function initialDynamicCount(d: DynamicPoolSettings, maxCount: number): number {
  return Math.min(maxCount, Math.max(1, d.minIdleCount));
}
