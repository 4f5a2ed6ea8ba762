/**
 * Parallel calls (the original's IBACMulti* family, SPEC §2.4): one call sends requests to several nodes at
 * once and waits until every one has answered or failed. Each call has its own connection, its own result
 * and its own comm status, so one call in doubt never hides what happened to the others.
 *
 * @example
 * ```ts
 * import { IbacEnv, callMany } from 'ibp';
 * await using env = await IbacEnv.create();
 * const results = await callMany(env, [
 *   { node: 'ECIF', app: 'cust_query', message: { id: 42 } },
 *   { node: 'CARD', app: 'card_list', message: { cust: 42 } },
 * ]);
 * for (const r of results) {
 *   if (r.ok) use(r.response.json());
 *   else if (r.commStatus === 'ON_SENDING') inquire(r.error);   // in doubt
 *   else retryLater(r.error);                                   // NOT_SENT: safe to retry
 * }
 * ```
 */
import { IbpError, toIbpError, type CommStatus } from '../core/errors.js';
import type { CallOptions, CallResponse, IbacEnv, MessageBody } from './env.js';

/** One call of a parallel exchange (the original's `struct IbacMultiRequesters` entry). */
export interface MultiCall {
  /** The server node to call. */
  node: string;
  app: string;
  /** The request message: a Buffer, a string or an object (sent as JSON). */
  message: MessageBody;
  /** Request files (paths; at most 4). */
  files?: string[];
  /** Whole-call timeout in seconds; default: `CallManyOptions.timeoutSec`, else the app's `timeout`. */
  timeoutSec?: number;
  /** Communication journal number; default: generated. */
  jnlsno?: string;
  /** Dye (trace) this transaction. */
  trace?: boolean;
}

/** What became of one call: `ok` with its response, or its error; always its comm status. */
export type MultiResult =
  | { ok: true; response: CallResponse; error?: undefined; commStatus: 'OK' }
  | { ok: false; response?: undefined; error: IbpError; commStatus: CommStatus };

export interface CallManyOptions {
  /** Default whole-call timeout in seconds for calls that do not set their own. */
  timeoutSec?: number;
  /** At most this many calls in flight at once (default: all of them). */
  concurrency?: number;
}

/**
 * Sends every call at once (each on its own short connection to the best host of its node) and resolves when
 * all have answered or failed, with one result per call in the order given. It never rejects because a call
 * failed; afterwards `env.commStatus` holds {@link multiCommStatus} of the results (IBACMultiGetCommStatus).
 * @throws IbpError IBP_ERR_CLIENT_BAD_ARGUMENT when `calls` is not an array or `concurrency` is not a positive integer.
 */
export async function callMany(env: IbacEnv, calls: readonly MultiCall[], options: CallManyOptions = {}): Promise<MultiResult[]> {
  if (!Array.isArray(calls)) {
    throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', 'calls must be an array of { node, app, message }', { commStatus: 'NOT_SENT' });
  }
  const limit = options.concurrency ?? Math.max(1, calls.length);
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `concurrency must be a positive integer, got ${String(options.concurrency)}`, { commStatus: 'NOT_SENT' });
  }
  const results = new Array<MultiResult>(calls.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < calls.length) {
      const i = next++;
      results[i] = await runOne(env, calls[i], options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, calls.length) }, lane));
  env.setCommStatus(multiCommStatus(results));
  return results;
}

/**
 * One comm status for a parallel exchange: `ON_SENDING` if any call is in doubt, else the status of the
 * first failed call (`NOT_SENT` or `COMPLETED`), else `OK`.
 */
export function multiCommStatus(results: readonly MultiResult[]): CommStatus | 'OK' {
  if (results.some((r) => r.commStatus === 'ON_SENDING')) return 'ON_SENDING';
  return results.find((r) => !r.ok)?.commStatus ?? 'OK';
}

async function runOne(env: IbacEnv, call: MultiCall | undefined, options: CallManyOptions): Promise<MultiResult> {
  try {
    if (typeof call !== 'object' || call === null) {
      throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', 'each call must be an object { node, app, message }', { commStatus: 'NOT_SENT' });
    }
    if (typeof call.node !== 'string' || call.node.length === 0) {
      throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `node must be a non-empty string, got ${JSON.stringify(call.node)}`, { commStatus: 'NOT_SENT' });
    }
    const o: CallOptions = { node: call.node };
    if (call.files !== undefined) o.files = call.files;
    const timeoutSec = call.timeoutSec ?? options.timeoutSec;
    if (timeoutSec !== undefined) o.timeoutSec = timeoutSec;
    if (call.jnlsno !== undefined) o.jnlsno = call.jnlsno;
    if (call.trace !== undefined) o.trace = call.trace;
    const response = await env.call(call.app, call.message, o);
    return { ok: true, response, commStatus: 'OK' };
  } catch (err) {
    // A failure without a status (none is expected) is counted as in doubt: never a blind retry.
    const error = toIbpError(err);
    return { ok: false, error, commStatus: error.commStatus ?? 'ON_SENDING' };
  }
}
