/**
 * The calls a two-phase coordinator makes (docs/2pc.md): a prepare to the best host of a node that remembers
 * which host answered (phase two must reach the same host: the prepared state lives in that host's home), and
 * phase-two calls to one exact host, made again until acknowledged (bounded).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadIbasConf } from '../core/config/index.js';
import { IbpError, toIbpError, type CommStatus } from '../core/errors.js';
import { Ib2Connection } from '../protocol/index.js';
import { CallResponse, type IbacEnv } from './env.js';
import type { LoggedParticipant, TwoPhaseHostRef } from './two-phase-log.js';
import { encodeTwoPhaseEnvelope, type CoordinatorRef, type TwoPhaseHeader, type TwoPhasePhase } from './two-phase-wire.js';

/** A participant's vote: its prepare answered (`ok`) or failed, and the host it went to (null: none reached). */
export interface TwoPhaseVote {
  ok: boolean;
  response?: CallResponse;
  error?: IbpError;
  commStatus: CommStatus | 'OK';
  host: TwoPhaseHostRef | null;
}

/** What became of phase two at one host. */
export interface PhaseTwoAck {
  host: TwoPhaseHostRef;
  acknowledged: boolean;
  attempts: number;
  /** The last failure (when not acknowledged, or before the attempt that was). */
  error?: IbpError;
}

export interface PhaseTwoRetry {
  /** Attempts per host before phase two is left for `ibp 2pc recover`. */
  attempts: number;
  /** Pause before attempt n+1: n × this, ms. */
  retryMs: number;
}

/** The journal number of one phase of one participant (at most 64 bytes: xids are at most 56). */
export function phaseJnlsno(xid: string, phase: TwoPhasePhase): string {
  return `${xid}-${phase === 'prepare' ? 'p' : phase === 'commit' ? 'c' : 'r'}`;
}

/**
 * Sends the prepare of one participant to the best host of its node and reports the host even when the call
 * failed after connecting (a prepare in doubt may have prepared there).
 */
export async function prepareAt(env: IbacEnv, header: TwoPhaseHeader, p: { node: string; app: string; message: unknown }, timeoutMs: number): Promise<TwoPhaseVote> {
  let host: TwoPhaseHostRef | null = null;
  try {
    const deadline = Date.now() + timeoutMs;
    const body = encodeTwoPhaseEnvelope(header, p.message as object);
    const { conn, host: chosen } = await env.connectBest(p.node, deadline);
    host = { ip: chosen.ip, port: chosen.port };
    try {
      const jnlsno = phaseJnlsno(header.xid, 'prepare');
      const r = await conn.call({
        clientNode: env.snapshot.thisNode, app: p.app, jnlsno, body, files: [], timeoutMs: Math.max(1, deadline - Date.now()), ...env.securityOf(p.node),
      });
      env.recordLoad(chosen, r.load);
      return { ok: true, response: new CallResponse(r, chosen, jnlsno), commStatus: 'OK', host };
    } finally {
      void conn.close().catch(() => undefined);
    }
  } catch (err) {
    const error = toIbpError(err);
    return { ok: false, error, commStatus: error.commStatus ?? 'ON_SENDING', host };
  }
}

/** Sends phase two (`commit` or `rollback`) to one host until it is acknowledged or the attempts are spent. */
export async function phaseTwoAt(
  env: IbacEnv, header: TwoPhaseHeader, app: string, host: TwoPhaseHostRef, timeoutMs: number, retry: PhaseTwoRetry,
): Promise<PhaseTwoAck> {
  const body = encodeTwoPhaseEnvelope(header);
  let error: IbpError | undefined;
  for (let attempt = 1; attempt <= retry.attempts; attempt++) {
    try {
      const conn = await Ib2Connection.connect({ host: host.ip, port: host.port, connectTimeoutMs: timeoutMs, fileDir: env.home.file });
      try {
        await conn.call({
          clientNode: env.snapshot.thisNode, app, jnlsno: phaseJnlsno(header.xid, header.phase), body, files: [], timeoutMs, ...env.securityAt(host.ip, host.port),
        });
      } finally {
        await conn.close().catch(() => undefined);
      }
      const ack: PhaseTwoAck = { host, acknowledged: true, attempts: attempt };
      if (error) ack.error = error;
      return ack;
    } catch (err) {
      error = toIbpError(err);
      // Presumed abort: an app that cannot take part in 2PC never prepared anything to roll back.
      if (header.phase === 'rollback' && error.code === 'IBP_ERR_2PC_NOT_SUPPORTED') return { host, acknowledged: true, attempts: attempt, error };
    }
    if (attempt < retry.attempts) await new Promise((r) => setTimeout(r, attempt * retry.retryMs));
  }
  const ack: PhaseTwoAck = { host, acknowledged: false, attempts: retry.attempts };
  if (error) ack.error = error;
  return ack;
}

/**
 * The hosts phase two must reach for a logged participant: its recorded host, or, when none was recorded
 * (recover of a transaction that crashed before its decision), every valid server host of its node.
 */
export function phaseTwoHosts(env: IbacEnv, p: LoggedParticipant): TwoPhaseHostRef[] {
  if (p.host) return [p.host];
  const node = env.snapshot.node(p.node);
  if (!node) return [];
  return node.hosts.filter((h) => !h.invalid && !h.clientOnly).map((h) => ({ ip: h.ip, port: h.port }));
}

/** The whole-call bound of a participant's calls: `timeoutSec`, else its app's `timeout`. */
export function participantTimeoutMs(env: IbacEnv, node: string, app: string, timeoutSec: number | undefined): number {
  return env.resolveCall(app, timeoutSec === undefined ? { node } : { node, timeoutSec }).timeoutMs;
}

/**
 * Where participants ask this coordinator's decision: the platform of this home (`etc/ibas.conf`'s server
 * address; a wildcard address is replaced by this node's host with that port in the replica), else null.
 */
export function defaultDecisionAddress(env: IbacEnv): { ip: string; port: number } | null {
  const path = join(env.home.etc, 'ibas.conf');
  if (!existsSync(path)) return null;
  let server: { ip: string; port: number };
  try {
    server = loadIbasConf(path).ibas.server;
  } catch {
    return null;
  }
  if (server.ip !== '0.0.0.0' && server.ip !== '::') return { ip: server.ip, port: server.port };
  const self = env.snapshot.node(env.snapshot.thisNode)?.hosts.find((h) => h.port === server.port && !h.invalid);
  return self ? { ip: self.ip, port: self.port } : null;
}

/** The coordinator reference sent in every envelope of this home's transactions. */
export function coordinatorRef(env: IbacEnv, id: string, address: { ip: string; port: number } | null): CoordinatorRef {
  return { node: env.snapshot.thisNode, home: env.home.root, id, address };
}

/** A bad argument of the coordinator API. */
export function badArgument(message: string): IbpError {
  return new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', message, { commStatus: 'NOT_SENT' });
}
