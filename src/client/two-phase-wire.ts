/**
 * How two-phase commit travels (docs/2pc.md, "Wire"): no protocol change. A 2PC phase is an ordinary
 * transaction of the participant's app whose request message is an envelope
 *
 *   {"ibp2pc":{"v":1,"xid":"…","phase":"prepare|commit|rollback","coordinator":{…},"timeoutMs":60000},"body":…}
 *
 * The platform worker recognises the envelope by its first bytes (`{"ibp2pc":`) and calls the package's
 * `prepare(ctx, xid)`, `commit(ctx, xid)` or `rollback(ctx, xid)` export instead of its handler, with
 * `ctx.request` = the inner body (`body`: a JSON value; `body64`: any bytes, base64).
 *
 * A prepared participant that hears nothing asks the coordinator's decision log with the reserved app
 * {@link TWO_PC_DECISION_APP} (it has spaces, so no configured app can take the name), served by the platform
 * running in the coordinator's home (see `askDecision` in two-phase-decision.ts).
 */
import { IbpError } from '../core/errors.js';
import { isXid } from './two-phase-log.js';

/** The reserved app code of a decision query. */
export const TWO_PC_DECISION_APP = 'ibp 2pc decision';
/** The first bytes of every 2PC envelope. */
export const TWO_PC_ENVELOPE_PREFIX = Buffer.from('{"ibp2pc":');

export type TwoPhasePhase = 'prepare' | 'commit' | 'rollback';

/** Where a participant finds the coordinator's decision log. */
export interface CoordinatorRef {
  /** The coordinator's node (this is what participants log; informative). */
  node: string;
  /** The coordinator's home (absolute); read directly only when its `file/2pc/coordinator.id` is `id`. */
  home: string;
  /** The id of the coordinator's decision log (`file/2pc/coordinator.id`). */
  id: string;
  /** The platform serving the coordinator's home, asked with {@link TWO_PC_DECISION_APP}; null when none. */
  address: { ip: string; port: number } | null;
}

/** The `ibp2pc` member of an envelope. */
export interface TwoPhaseHeader {
  v: 1;
  xid: string;
  phase: TwoPhasePhase;
  coordinator: CoordinatorRef;
  /** How long a prepared participant waits for phase two before it asks the decision, ms. */
  timeoutMs: number;
}

/** A decoded envelope: the header and the inner request message. */
export interface TwoPhaseEnvelope {
  header: TwoPhaseHeader;
  body: Buffer;
}

/** Builds the request message of one 2PC phase. */
export function encodeTwoPhaseEnvelope(header: TwoPhaseHeader, body?: Buffer | string | object | null): Buffer {
  const env: Record<string, unknown> = { ibp2pc: header };
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) env.body64 = Buffer.from(body).toString('base64');
  else if (typeof body === 'string') env.body64 = Buffer.from(body).toString('base64');
  else if (body !== undefined && body !== null) env.body = body;
  return Buffer.from(JSON.stringify(env));
}

/** True when `body` starts like a 2PC envelope (a cheap check on the hot path). */
export function looksLikeTwoPhaseEnvelope(body: Buffer): boolean {
  return body.length > TWO_PC_ENVELOPE_PREFIX.length && body[0] === 0x7b && body.subarray(0, TWO_PC_ENVELOPE_PREFIX.length).equals(TWO_PC_ENVELOPE_PREFIX);
}

/**
 * Decodes an envelope, checking every field.
 * @throws IbpError IBP_ERR_2PC_BAD_ENVELOPE naming the bad field.
 */
export function decodeTwoPhaseEnvelope(body: Buffer): TwoPhaseEnvelope {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new IbpError('IBP_ERR_2PC_BAD_ENVELOPE', `a 2PC envelope is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const env = raw as { ibp2pc?: Partial<TwoPhaseHeader>; body?: unknown; body64?: unknown };
  const h = env.ibp2pc;
  const bad = (what: string): never => {
    throw new IbpError('IBP_ERR_2PC_BAD_ENVELOPE', `a 2PC envelope has a bad ${what}`);
  };
  if (typeof h !== 'object' || h === null) return bad('ibp2pc member');
  if (h.v !== 1) bad(`version ${JSON.stringify(h.v)} (expected 1)`);
  if (!isXid(h.xid)) bad(`xid ${JSON.stringify(h.xid)}`);
  if (h.phase !== 'prepare' && h.phase !== 'commit' && h.phase !== 'rollback') bad(`phase ${JSON.stringify(h.phase)}`);
  if (typeof h.timeoutMs !== 'number' || !Number.isSafeInteger(h.timeoutMs) || h.timeoutMs <= 0) bad(`timeoutMs ${JSON.stringify(h.timeoutMs)}`);
  const c = h.coordinator as Partial<CoordinatorRef> | undefined;
  if (typeof c !== 'object' || c === null || typeof c.node !== 'string' || typeof c.home !== 'string' || typeof c.id !== 'string' || c.id.length === 0) bad('coordinator');
  const a = c!.address;
  if (a !== null && (typeof a !== 'object' || typeof a.ip !== 'string' || !Number.isSafeInteger(a.port) || a.port <= 0 || a.port > 65535)) bad('coordinator address');
  let inner: Buffer;
  if (typeof env.body64 === 'string') inner = Buffer.from(env.body64, 'base64');
  else if (env.body !== undefined) inner = Buffer.from(JSON.stringify(env.body));
  else inner = Buffer.alloc(0);
  const header: TwoPhaseHeader = {
    v: 1,
    xid: h.xid!,
    phase: h.phase!,
    coordinator: { node: c!.node!, home: c!.home!, id: c!.id!, address: a ? { ip: a.ip, port: a.port } : null },
    timeoutMs: h.timeoutMs!,
  };
  return { header, body: inner };
}

/** The request of a decision query. */
export interface DecisionQuery {
  xid: string;
  /** The decision log id the asker expects (its envelope's `coordinator.id`). */
  coordinatorId: string;
  /** Write `rollback` when nothing is decided yet (a participant whose timeout passed). */
  abortIfUndecided: boolean;
  /** The asking node (recorded as `participant <node>` when it aborts). */
  asker: string;
}

/** The answer to a decision query: null = nothing decided (only when `abortIfUndecided` was false). */
export interface DecisionAnswer {
  xid: string;
  decision: 'commit' | 'rollback' | null;
  by?: string;
}

/** Checks a decision query. @throws IbpError IBP_ERR_2PC_BAD_ENVELOPE */
export function decodeDecisionQuery(body: Buffer): DecisionQuery {
  let q: Partial<DecisionQuery>;
  try {
    q = JSON.parse(body.toString('utf8')) as Partial<DecisionQuery>;
  } catch (err) {
    throw new IbpError('IBP_ERR_2PC_BAD_ENVELOPE', `a 2PC decision query is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof q !== 'object' || q === null || !isXid(q.xid) || typeof q.coordinatorId !== 'string' || typeof q.abortIfUndecided !== 'boolean' || typeof q.asker !== 'string') {
    throw new IbpError('IBP_ERR_2PC_BAD_ENVELOPE', 'a 2PC decision query needs { xid, coordinatorId, abortIfUndecided, asker }');
  }
  return { xid: q.xid, coordinatorId: q.coordinatorId, abortIfUndecided: q.abortIfUndecided, asker: q.asker };
}
