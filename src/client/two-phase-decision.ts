/**
 * Asking the coordinator's decision (docs/2pc.md, "Participant timeout"). A prepared participant that has not
 * heard phase two within its timeout asks the coordinator's decision log, with `abortIfUndecided`: when
 * nothing is decided yet, the log records `rollback` (first writer wins, so the coordinator can no longer
 * commit) and the participant rolls back; when the log says `commit`, it commits.
 *
 * Two ways to reach the log, tried in this order:
 * 1. over the network: the reserved app `ibp 2pc decision` on the platform that runs in the coordinator's home
 *    (`coordinator.address`; the coordinator fills it from its home's `etc/ibas.conf`);
 * 2. co-located: the coordinator's home is readable here and its `file/2pc/coordinator.id` is the id the
 *    envelope named (a home that merely has the same path on another machine has another id).
 * When neither works the participant cannot know the outcome: it stays prepared and asks again later
 * (IBP_ERR_2PC_DECISION_UNREACHABLE). This is the blocking case every 2PC has; it never guesses.
 */
import { IbpError, toIbpError } from '../core/errors.js';
import { Ib2Connection } from '../protocol/index.js';
import { DecisionLog, readCoordinatorId } from './two-phase-log.js';
import { TWO_PC_DECISION_APP, decodeDecisionQuery, type CoordinatorRef, type DecisionAnswer, type DecisionQuery } from './two-phase-wire.js';

/**
 * The platform side of a decision query, run in the coordinator's home: reads (and, when asked, settles to
 * rollback) the decision of one xid.
 * @throws IbpError IBP_ERR_2PC_WRONG_COORDINATOR when this home's log is not the one asked for.
 */
export function answerDecisionQuery(homeRoot: string, query: DecisionQuery): DecisionAnswer {
  const id = readCoordinatorId(homeRoot);
  if (id === undefined || id !== query.coordinatorId) {
    throw new IbpError('IBP_ERR_2PC_WRONG_COORDINATOR', `the home ${homeRoot} ${id === undefined ? 'has no 2PC decision log' : `holds decision log ${id}`}, not ${query.coordinatorId}`);
  }
  const log = DecisionLog.open(homeRoot, { create: false });
  const found = log.readDecision(query.xid);
  if (found) return { xid: query.xid, decision: found.decision, by: found.by };
  if (!query.abortIfUndecided) return { xid: query.xid, decision: null };
  const participants = log.readBegin(query.xid)?.participants ?? [];
  const d = log.decide(query.xid, 'rollback', participants, `participant ${query.asker}`);
  return { xid: query.xid, decision: d.decision, by: d.by };
}

/** The request body of a decision query, decoded and answered (what the platform's built-in app runs). */
export function answerDecisionRequest(homeRoot: string, body: Buffer): Buffer {
  return Buffer.from(JSON.stringify(answerDecisionQuery(homeRoot, decodeDecisionQuery(body))));
}

export interface AskDecisionOptions {
  /** The asking node. */
  asker: string;
  /** Settle an undecided transaction to rollback (a participant whose timeout passed). */
  abortIfUndecided: boolean;
  /** Whole-query bound, ms. */
  timeoutMs: number;
  /** Where the IB2 client may store response files (none are expected). */
  fileDir: string;
}

/** The answer and how it was reached. */
export interface AskedDecision extends DecisionAnswer {
  via: 'network' | 'local';
}

/**
 * Asks the decision of `xid` from the coordinator's log (see the file header).
 * @throws IbpError IBP_ERR_2PC_DECISION_UNREACHABLE when neither way works (the cause says why);
 *   IBP_ERR_2PC_WRONG_COORDINATOR when the address answers for another log.
 */
export async function askDecision(coordinator: CoordinatorRef, xid: string, o: AskDecisionOptions): Promise<AskedDecision> {
  const query: DecisionQuery = { xid, coordinatorId: coordinator.id, abortIfUndecided: o.abortIfUndecided, asker: o.asker };
  let networkError: IbpError | undefined;
  if (coordinator.address) {
    try {
      return { ...(await askOverNetwork(coordinator.address, query, o)), via: 'network' };
    } catch (err) {
      networkError = toIbpError(err);
      if (networkError.code === 'IBP_ERR_2PC_WRONG_COORDINATOR') throw networkError;
    }
  }
  if (readCoordinatorId(coordinator.home) === coordinator.id) {
    return { ...answerDecisionQuery(coordinator.home, query), via: 'local' };
  }
  const how = coordinator.address ? `${coordinator.address.ip}:${coordinator.address.port} (${networkError?.message ?? 'no answer'})` : 'no platform address';
  throw new IbpError('IBP_ERR_2PC_DECISION_UNREACHABLE', `the decision of ${xid} is out of reach: coordinator ${coordinator.node} at ${how}, and its home ${coordinator.home} is not readable here`, { cause: networkError });
}

async function askOverNetwork(address: { ip: string; port: number }, query: DecisionQuery, o: AskDecisionOptions): Promise<DecisionAnswer> {
  const conn = await Ib2Connection.connect({ host: address.ip, port: address.port, connectTimeoutMs: o.timeoutMs, fileDir: o.fileDir });
  try {
    const r = await conn.call({
      clientNode: query.asker,
      app: TWO_PC_DECISION_APP,
      jnlsno: `${query.xid}-q`,
      body: Buffer.from(JSON.stringify(query)),
      files: [],
      timeoutMs: o.timeoutMs,
    });
    const a = JSON.parse(r.body.toString('utf8')) as Partial<DecisionAnswer>;
    if (a.xid !== query.xid || (a.decision !== 'commit' && a.decision !== 'rollback' && a.decision !== null)) {
      throw new IbpError('IBP_ERR_2PC_BAD_ENVELOPE', `a malformed decision answer for ${query.xid}: ${r.body.toString('utf8').slice(0, 200)}`);
    }
    const answer: DecisionAnswer = { xid: a.xid, decision: a.decision };
    if (typeof a.by === 'string') answer.by = a.by;
    return answer;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
