/**
 * Recovery of a coordinator's unfinished two-phase transactions (`ibp 2pc recover`, docs/2pc.md): for every
 * transaction of the home's decision log that is not done,
 *
 * - no decision yet (the coordinator died in phase one, or before writing it): decide `rollback` — unless a
 *   decision appears meanwhile (first writer wins) — and send it to every host of each participant's node (a
 *   rollback of a transaction a host never prepared is a no-op: presumed abort);
 * - decided: send the decision again to the host each participant prepared on (every host of its node when
 *   none was recorded);
 * - when every host acknowledged: mark it done.
 */
import { toIbpError, type IbpError } from '../core/errors.js';
import type { IbacEnv } from './env.js';
import { DecisionLog, isXid, readCoordinatorId, type LoggedParticipant, type TwoPhaseDecision, type TwoPhaseLogState } from './two-phase-log.js';
import { badArgument, coordinatorRef, defaultDecisionAddress, phaseTwoAt, phaseTwoHosts, type PhaseTwoAck } from './two-phase-calls.js';
import { DEFAULT_PARTICIPANT_TIMEOUT_MS, DEFAULT_PHASE_TWO_ATTEMPTS, DEFAULT_PHASE_TWO_RETRY_MS } from './two-phase.js';
import type { TwoPhaseHeader } from './two-phase-wire.js';

export interface RecoverOptions {
  /** Only this transaction. */
  xid?: string;
  /** Bound of each phase-two call, seconds; default: each app's `timeout`, else 30. */
  timeoutSec?: number;
  /** Phase-two attempts per host. */
  phaseTwoAttempts?: number;
  /** Pause before phase-two attempt n+1: n × this, ms. */
  phaseTwoRetryMs?: number;
}

/** What recovery did with one transaction. */
export interface RecoveredTransaction {
  xid: string;
  /** Its state before recovery. */
  before: TwoPhaseLogState;
  decision: TwoPhaseDecision;
  /** Who decided (`recover` when recovery did). */
  decidedBy: string;
  /** Every host acknowledged: the transaction is done. */
  complete: boolean;
  acks: Array<{ node: string; app: string } & PhaseTwoAck>;
  /** A failure that stopped this transaction's recovery (the log could not be read or written). */
  error?: IbpError;
}

/**
 * Re-drives every unfinished transaction of `env`'s home (or just `options.xid`); see the file header. A home
 * without a decision log, or an xid that is not in it or is done, gives an empty list (nothing is created).
 * @throws IbpError IBP_ERR_CLIENT_BAD_ARGUMENT (a malformed xid), IBP_ERR_2PC_LOG (the log cannot be read).
 */
export async function recoverTwoPhase(env: IbacEnv, options: RecoverOptions = {}): Promise<RecoveredTransaction[]> {
  if (options.xid !== undefined && !isXid(options.xid)) throw badArgument(`xid must be 1-56 of A-Za-z0-9_.- starting with a letter or digit, got ${JSON.stringify(options.xid)}`);
  if (readCoordinatorId(env.home.root) === undefined) return [];
  const log = DecisionLog.open(env.home.root, { create: false });
  const entries = options.xid === undefined ? log.list() : [log.entry(options.xid)];
  const retry = { attempts: options.phaseTwoAttempts ?? DEFAULT_PHASE_TWO_ATTEMPTS, retryMs: options.phaseTwoRetryMs ?? DEFAULT_PHASE_TWO_RETRY_MS };
  const address = defaultDecisionAddress(env);
  const out: RecoveredTransaction[] = [];
  for (const e of entries) {
    if (e.done || (!e.begin && !e.decision)) continue;
    const base = { xid: e.xid, before: e.state };
    let decision = e.decision;
    try {
      decision ??= log.decide(e.xid, 'rollback', e.begin?.participants ?? [], 'recover');
      // A decision a participant wrote (its timeout) names no participants: take them from the begin record.
      const participants: LoggedParticipant[] = decision.participants.length > 0 || !e.begin ? decision.participants : e.begin.participants;
      const header: TwoPhaseHeader = {
        v: 1, xid: e.xid, phase: decision.decision,
        coordinator: coordinatorRef(env, log.coordinatorId, address),
        timeoutMs: e.begin?.participantTimeoutMs ?? DEFAULT_PARTICIPANT_TIMEOUT_MS,
      };
      const targets = participants.flatMap((p) => phaseTwoHosts(env, p).map((host) => ({ p, host })));
      const acks = await Promise.all(targets.map(async ({ p, host }) => ({
        node: p.node, app: p.app, ...(await phaseTwoAt(env, header, p.app, host, callTimeoutMs(env, p, options.timeoutSec), retry)),
      })));
      const complete = acks.every((a) => a.acknowledged) && participants.every((p) => phaseTwoHosts(env, p).length > 0);
      if (complete) log.markDone(e.xid);
      out.push({ ...base, decision: decision.decision, decidedBy: decision.by, complete, acks });
    } catch (err) {
      out.push({ ...base, decision: decision?.decision ?? 'rollback', decidedBy: decision?.by ?? '', complete: false, acks: [], error: toIbpError(err) });
    }
  }
  return out;
}

function callTimeoutMs(env: IbacEnv, p: LoggedParticipant, timeoutSec: number | undefined): number {
  if (timeoutSec !== undefined) return timeoutSec * 1000;
  const app = env.snapshot.app(p.app);
  return (app && app.timeout > 0 ? app.timeout : 30) * 1000;
}
