/**
 * The platform's side of two-phase commit (docs/2pc.md, "Participant"). A worker hands it every transaction
 * whose request is a 2PC envelope; it calls the app package's `prepare(ctx, xid)`, `commit(ctx, xid)` or
 * `rollback(ctx, xid)` export instead of its handler, and keeps a participant record of every transaction this
 * home may hold prepared (two-phase-records.ts):
 *
 * - prepare: record `preparing` (durable) → app `prepare` → record `prepared` → answer (the vote "yes");
 *   a prepare that fails is rolled back at once (app `rollback`, record removed) and answered with the error;
 * - commit / rollback: app hook → record removed → answer. A failed commit keeps the record.
 *
 * The participant timeout: every `sweepMs` the worker looks for records whose deadline passed (the prepare's
 * time + the coordinator's `timeoutMs`) and resolves each one: it asks the coordinator's decision log with
 * abort-if-undecided (two-phase-decision.ts), then runs the app's `commit` or `rollback` between transactions
 * and removes the record. When the log is out of reach it stays prepared and asks again later. Every worker of
 * the home sweeps; a lock file per record keeps two from resolving the same one at once.
 */
import type { Logger } from 'pino';
import { IbpError, toIbpError } from '../core/errors.js';
import type { TransactionContext } from '../app/context.js';
import { askDecision, type TwoPhaseHeader } from '../client/index.js';
import type { IncomingTransaction } from '../protocol/index.js';
import { ParticipantRecords, type ParticipantRecord } from './two-phase-records.js';

/** The three exports a package needs to take part in 2PC. */
export interface TwoPhaseHooks {
  prepare: (ctx: TransactionContext, xid: string) => unknown;
  commit: (ctx: TransactionContext, xid: string) => unknown;
  rollback: (ctx: TransactionContext, xid: string) => unknown;
}

/** How often a worker looks for prepared transactions whose timeout passed (default), ms. */
export const DEFAULT_SWEEP_MS = 1000;
/** A participant that could not reach the decision asks again after this long (at most), ms. */
const ASK_AGAIN_MAX_MS = 30_000;

export interface TwoPhaseParticipantOptions {
  homeRoot: string;
  fileDir: string;
  log: Logger;
  thisNode: () => string;
  /**
   * Runs `fn` between transactions (in the worker's turn) with the exports of `tx.app`'s package and a context
   * for `tx` (a resolution has no client: an empty request).
   */
  runResolution: (tx: IncomingTransaction, fn: (exports: Readonly<Record<string, unknown>>, ctx: TransactionContext) => Promise<void>) => Promise<void>;
  /** Default {@link DEFAULT_SWEEP_MS}; `IBP_2PC_SWEEP_MS` overrides it. */
  sweepMs?: number;
}

/** The 2PC hooks of a package, or undefined when it does not export all three. */
export function twoPhaseHooksOf(exports: Readonly<Record<string, unknown>>): TwoPhaseHooks | undefined {
  const { prepare, commit, rollback } = exports;
  if (typeof prepare !== 'function' || typeof commit !== 'function' || typeof rollback !== 'function') return undefined;
  return { prepare, commit, rollback } as TwoPhaseHooks;
}

/** Calls a hook; a non-zero number returned or a throw is a failure (as for an app's handler). */
async function callHook(fn: (ctx: TransactionContext, xid: string) => unknown, ctx: TransactionContext, xid: string, what: string): Promise<void> {
  const rc = await fn(ctx, xid);
  if (typeof rc === 'number' && rc !== 0) {
    throw new IbpError('IBP_ERR_SERVER_APP_FAILED', `app ${ctx.app}: ${what}(${xid}) returned ${rc}`, { details: { rc, xid } });
  }
}

export class TwoPhaseParticipant {
  readonly records: ParticipantRecords;
  #o: TwoPhaseParticipantOptions;
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;
  /** xid~app → epoch ms before which this worker does not ask again. */
  #askAgainAt = new Map<string, number>();

  constructor(o: TwoPhaseParticipantOptions) {
    this.#o = o;
    this.records = new ParticipantRecords(o.homeRoot);
  }

  /** Runs one phase of a 2PC envelope for the app of `ctx` (see the file header). Throws the failure to answer. */
  async run(header: TwoPhaseHeader, exports: Readonly<Record<string, unknown>>, ctx: TransactionContext): Promise<void> {
    const hooks = twoPhaseHooksOf(exports);
    if (!hooks) throw new IbpError('IBP_ERR_2PC_NOT_SUPPORTED', `app ${ctx.app} exports no prepare, commit and rollback functions`);
    const { xid } = header;
    if (header.phase === 'prepare') {
      const rec: ParticipantRecord = {
        format: 'ibp-2pc-participant/1', xid, app: ctx.app, state: 'preparing', coordinator: header.coordinator,
        timeoutMs: header.timeoutMs, deadlineMs: Date.now() + header.timeoutMs, clientNode: ctx.clientNode, createdAt: new Date().toISOString(),
      };
      this.records.write(rec);
      try {
        await callHook(hooks.prepare, ctx, xid, 'prepare');
      } catch (err) {
        // Vote no: nothing of this transaction may stay prepared here.
        try {
          await callHook(hooks.rollback, ctx, xid, 'rollback');
          this.records.remove(xid, ctx.app);
        } catch (rbErr) {
          this.#o.log.error({ err: rbErr, xid, app: ctx.app }, '2pc: rollback after a failed prepare failed; the participant timeout will retry it');
        }
        throw err;
      }
      this.records.write({ ...rec, state: 'prepared' });
      return;
    }
    await callHook(header.phase === 'commit' ? hooks.commit : hooks.rollback, ctx, xid, header.phase);
    this.records.remove(xid, ctx.app);
  }

  /** Starts the periodic sweep (an unref'd timer). */
  start(): void {
    if (this.#timer) return;
    const env = Number.parseInt(process.env.IBP_2PC_SWEEP_MS ?? '', 10);
    const ms = Number.isSafeInteger(env) && env > 0 ? env : this.#o.sweepMs ?? DEFAULT_SWEEP_MS;
    this.#timer = setInterval(() => void this.sweep(), ms);
    this.#timer.unref();
  }

  /** Resolves every record whose deadline passed (see the file header). Resolves when this sweep is over. */
  async sweep(now = Date.now()): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      for (const rec of this.records.list()) {
        const key = `${rec.xid}~${rec.app}`;
        if (rec.deadlineMs > now || (this.#askAgainAt.get(key) ?? 0) > now) continue;
        if (!this.records.claim(rec.xid, rec.app)) continue;
        try {
          await this.#resolve(rec);
          this.#askAgainAt.delete(key);
        } catch (err) {
          const e = toIbpError(err);
          const wait = Math.min(ASK_AGAIN_MAX_MS, Math.max(1000, rec.timeoutMs));
          this.#askAgainAt.set(key, Date.now() + wait);
          this.#o.log.warn({ err: e, xid: rec.xid, app: rec.app }, `2pc: prepared ${rec.xid} not resolved yet; asking again in ${wait} ms`);
        } finally {
          this.records.release(rec.xid, rec.app);
        }
      }
    } finally {
      this.#sweeping = false;
    }
  }

  async #resolve(rec: ParticipantRecord): Promise<void> {
    const answer = await askDecision(rec.coordinator, rec.xid, {
      asker: this.#o.thisNode(), abortIfUndecided: true, timeoutMs: 10_000, fileDir: this.#o.fileDir,
    });
    const phase = answer.decision === 'commit' ? 'commit' : 'rollback';
    this.#o.log.info({ xid: rec.xid, app: rec.app, decision: phase, by: answer.by, via: answer.via }, `2pc: prepared ${rec.xid} timed out; the decision log says ${phase}`);
    const tx: IncomingTransaction = {
      protocol: 'IB2', clientNode: rec.clientNode, clientIp: '', clientPort: 0, app: rec.app,
      jnlsno: `${rec.xid}-t`, trace: false, body: Buffer.alloc(0), requestFiles: [],
    };
    await this.#o.runResolution(tx, async (exports, ctx) => {
      // The record may have gone meanwhile (phase two arrived first).
      if (!this.records.read(rec.xid, rec.app)) return;
      const hooks = twoPhaseHooksOf(exports);
      if (!hooks) throw new IbpError('IBP_ERR_2PC_NOT_SUPPORTED', `app ${rec.app} exports no prepare, commit and rollback functions`);
      await callHook(phase === 'commit' ? hooks.commit : hooks.rollback, ctx, rec.xid, phase);
      this.records.remove(rec.xid, rec.app);
    });
  }

  /** Stops the sweep. Idempotent. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
