/**
 * Two-phase commit across nodes (the original's IBACMultiSendCommitOrRollbackAndReceiveResponses, SPEC §2.4;
 * docs/2pc.md). The client is the coordinator:
 *
 * 1. it logs the transaction's start in its home's decision log (`file/2pc/<xid>.begin.json`);
 * 2. phase one: every participant's app runs `prepare(ctx, xid)` at once (one parallel call per participant);
 * 3. it decides — `commit` when every participant voted yes, else `rollback` — and writes the decision
 *    durably (`file/2pc/<xid>.decision.json`) before any phase-two message leaves; a decision a participant
 *    already settled (rollback after its timeout) stands instead;
 * 4. phase two: `commit(ctx, xid)` or `rollback(ctx, xid)` on the very host that prepared, made again until
 *    acknowledged (bounded by `phaseTwoAttempts`); what is still unacknowledged is left for `ibp 2pc recover`
 *    and for the participants' own timeout;
 * 5. when every participant acknowledged: `file/2pc/<xid>.done.json`.
 *
 * @example
 * ```ts
 * import { IbacEnv, runTwoPhase } from 'ibp';
 * await using env = await IbacEnv.create();
 * const r = await runTwoPhase(env, [
 *   { node: 'BANKA', app: 'ibp_bank_transfer', message: { account: 'alice', delta: -100 } },
 *   { node: 'BANKB', app: 'ibp_bank_transfer', message: { account: 'bob', delta: 100 } },
 * ]);
 * r.outcome;   // 'committed' | 'rolled_back'
 * r.complete;  // false: phase two is not acknowledged everywhere yet (ibp 2pc recover finishes it)
 * ```
 */
import type { IbacEnv, MessageBody } from './env.js';
import { DecisionLog, isXid, newXid, type LoggedParticipant, type TwoPhaseHostRef } from './two-phase-log.js';
import {
  badArgument, coordinatorRef, defaultDecisionAddress, participantTimeoutMs, phaseTwoAt, prepareAt,
  type PhaseTwoAck, type TwoPhaseVote,
} from './two-phase-calls.js';
import type { TwoPhaseHeader } from './two-phase-wire.js';

/** How long a prepared participant waits for phase two before it asks the decision (default). */
export const DEFAULT_PARTICIPANT_TIMEOUT_MS = 60_000;
/** Phase-two attempts per host before it is left for recovery (default). */
export const DEFAULT_PHASE_TWO_ATTEMPTS = 5;
/** Pause before phase-two attempt n+1: n × this (default), ms. */
export const DEFAULT_PHASE_TWO_RETRY_MS = 200;

/** One participant: an app on a node whose package exports prepare/commit/rollback. */
export interface TwoPhaseParticipant {
  node: string;
  app: string;
  /** The prepare's request message (the app reads it as `ctx.request` in `prepare`). */
  message: MessageBody;
}

export interface TwoPhaseOptions {
  /** The transaction id (1-56 of `A-Za-z0-9_.-`); default: generated. */
  xid?: string;
  /** Bound of each call (prepare, each phase-two attempt), seconds; default: each app's `timeout`. */
  timeoutSec?: number;
  /** How long a prepared participant waits for phase two before it asks the decision, ms. */
  participantTimeoutMs?: number;
  /** Phase-two attempts per host before it is left for `ibp 2pc recover`. */
  phaseTwoAttempts?: number;
  /** Pause before phase-two attempt n+1: n × this, ms. */
  phaseTwoRetryMs?: number;
  /**
   * Where participants ask the decision over the network: the platform that runs in this home. Default: this
   * home's `etc/ibas.conf` server address when the file exists, else null (participants can then only read the
   * log directly, when co-located).
   */
  decisionAddress?: { ip: string; port: number } | null;
}

/** What became of one participant. */
export interface TwoPhaseParticipantResult {
  node: string;
  app: string;
  /** The host that took the prepare (null: none was reached). */
  host: TwoPhaseHostRef | null;
  prepare: TwoPhaseVote;
  /** Phase two at that host; null when it was not needed (the prepare never left this process). */
  phaseTwo: PhaseTwoAck | null;
}

export interface TwoPhaseResult {
  xid: string;
  outcome: 'committed' | 'rolled_back';
  /** Who decided: `coordinator`, or `participant <node>` when a participant's timeout settled it first. */
  decidedBy: string;
  /** True when every participant acknowledged phase two; false: left for `ibp 2pc recover` (and timeouts). */
  complete: boolean;
  /** One per participant, in the order given. */
  results: TwoPhaseParticipantResult[];
}

/**
 * Runs one distributed transaction with two-phase commit (see the file header). It rejects only for bad
 * arguments or a decision log that cannot be written before anything was sent; every participant failure is
 * reported in the result.
 * @throws IbpError IBP_ERR_CLIENT_BAD_ARGUMENT, IBP_ERR_REPLICA_UNKNOWN_APP (nothing sent);
 *   IBP_ERR_2PC_LOG (the decision log cannot be written).
 */
export async function runTwoPhase(env: IbacEnv, participants: readonly TwoPhaseParticipant[], options: TwoPhaseOptions = {}): Promise<TwoPhaseResult> {
  const o = checkOptions(participants, options);
  const timeouts = participants.map((p) => participantTimeoutMs(env, p.node, p.app, options.timeoutSec));
  const log = DecisionLog.open(env.home.root);
  const xid = options.xid ?? newXid(env.snapshot.thisNode);
  if (log.readBegin(xid) || log.readDecision(xid)) throw badArgument(`transaction id ${xid} is already in the decision log ${log.dir}`);
  const address = options.decisionAddress === undefined ? defaultDecisionAddress(env) : options.decisionAddress;
  const header = (phase: TwoPhaseHeader['phase']): TwoPhaseHeader => ({
    v: 1, xid, phase, coordinator: coordinatorRef(env, log.coordinatorId, address), timeoutMs: o.participantTimeoutMs,
  });
  log.writeBegin({
    xid, coordinatorNode: env.snapshot.thisNode, participantTimeoutMs: o.participantTimeoutMs,
    participants: participants.map((p) => ({ node: p.node, app: p.app, host: null })),
  });
  fault('after_begin');

  // Phase one.
  const votes = await Promise.all(participants.map((p, i) => prepareAt(env, header('prepare'), p, timeouts[i]!)));
  fault('before_decision');

  // The decision, durable before phase two. Phase two goes to every host that voted yes or whose prepare is in
  // doubt; a host that answered no (COMPLETED) has rolled back itself, and a prepare NOT_SENT never arrived.
  const needsPhaseTwo = votes.map((v) => v.host !== null && (v.commStatus === 'OK' || v.commStatus === 'ON_SENDING'));
  const logged: LoggedParticipant[] = participants.flatMap((p, i) => (needsPhaseTwo[i] ? [{ node: p.node, app: p.app, host: votes[i]!.host }] : []));
  const wanted = votes.every((v) => v.ok) ? 'commit' : 'rollback';
  const decision = log.decide(xid, wanted, logged, 'coordinator');
  fault('after_decision');

  // Phase two.
  const h2 = header(decision.decision);
  const acks = await Promise.all(participants.map((p, i) =>
    needsPhaseTwo[i] ? phaseTwoAt(env, h2, p.app, votes[i]!.host!, timeouts[i]!, o) : Promise.resolve(null)));
  const complete = acks.every((a) => a === null || a.acknowledged);
  if (complete) log.markDone(xid);
  return {
    xid,
    outcome: decision.decision === 'commit' ? 'committed' : 'rolled_back',
    decidedBy: decision.by,
    complete,
    results: participants.map((p, i) => ({ node: p.node, app: p.app, host: votes[i]!.host, prepare: votes[i]!, phaseTwo: acks[i]! })),
  };
}

function checkOptions(participants: readonly TwoPhaseParticipant[], options: TwoPhaseOptions): { participantTimeoutMs: number; attempts: number; retryMs: number } {
  if (!Array.isArray(participants) || participants.length === 0) throw badArgument('participants must be a non-empty array of { node, app, message }');
  const seen = new Set<string>();
  for (const p of participants) {
    if (typeof p !== 'object' || p === null || typeof p.node !== 'string' || p.node.length === 0 || typeof p.app !== 'string' || p.app.length === 0) {
      throw badArgument(`each participant must be { node, app, message }, got ${JSON.stringify(p)}`);
    }
    const key = `${p.node}\u0000${p.app}`;
    if (seen.has(key)) throw badArgument(`participant ${p.app}@${p.node} is given twice: one app of one node takes part once per transaction`);
    seen.add(key);
  }
  if (options.xid !== undefined && !isXid(options.xid)) throw badArgument(`xid must be 1-56 of A-Za-z0-9_.- starting with a letter or digit, got ${JSON.stringify(options.xid)}`);
  const positive = (name: string, v: number | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v < min) throw badArgument(`${name} must be an integer >= ${min}, got ${String(v)}`);
    return v;
  };
  return {
    participantTimeoutMs: positive('participantTimeoutMs', options.participantTimeoutMs, DEFAULT_PARTICIPANT_TIMEOUT_MS, 1),
    attempts: positive('phaseTwoAttempts', options.phaseTwoAttempts, DEFAULT_PHASE_TWO_ATTEMPTS, 1),
    retryMs: positive('phaseTwoRetryMs', options.phaseTwoRetryMs, DEFAULT_PHASE_TWO_RETRY_MS, 0),
  };
}

/**
 * Fault injection for tests (docs/2pc.md, "Failure table"): `IBP_2PC_FAULT=after_begin|before_decision|after_decision`
 * kills this coordinator process with SIGKILL at that step, as a power cut would.
 */
function fault(step: 'after_begin' | 'before_decision' | 'after_decision'): void {
  if (process.env.IBP_2PC_FAULT === step) process.kill(process.pid, 'SIGKILL');
}
