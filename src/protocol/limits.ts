/**
 * Resolving the protocol limits: defaults from types.ts, overridden field by field, each checked.
 */
import { IbpError } from '../core/errors.js';
import { DEFAULT_LIMITS, type ProtocolLimits } from './types.js';

/** The grace period after GOAWAY during which requests already on the wire are still served, ms. */
export const GOAWAY_GRACE_MS = 2000;
/** After a protocol error the socket is destroyed at the latest this long after our last bytes, ms. */
export const CLOSE_LINGER_MS = 1000;

/**
 * `DEFAULT_LIMITS` with `partial` applied; frozen.
 * @throws IbpError IBP_ERR_CONFIG_INVALID when a value is not a positive integer.
 */
export function resolveLimits(partial: Partial<ProtocolLimits> | undefined): ProtocolLimits {
  const out: ProtocolLimits = { ...DEFAULT_LIMITS };
  if (partial) {
    for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof ProtocolLimits>) {
      const v = partial[key];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
        throw new IbpError('IBP_ERR_CONFIG_INVALID', `protocol limit ${key} must be a positive integer, got ${String(v)}`, {
          details: { key, value: v },
        });
      }
      out[key] = v;
    }
  }
  return Object.freeze(out);
}
