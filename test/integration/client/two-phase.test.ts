/**
 * Two-phase commit with a real embedded database: a money transfer between an account on BANKA and one on BANKB
 * (two real platforms, each with its own SQLite database), coordinated by a client in this process. Every
 * scenario checks the invariant on the databases themselves: both legs committed or both not, money neither
 * lost nor made, nothing left held or prepared.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { DecisionLog, IbacEnv, askDecision, runTwoPhase, type TwoPhaseParticipant } from '../../../src/client/index.js';
import { cliPath } from '../../../src/cli/scratch-cluster.js';
import { join } from 'node:path';
import { AHEAD_APP, BANK_APP, openAccount, settledTransfer, startBankWorld, transferAccount, transferState, type BankWorld } from '../../helpers/bank.js';

describe('two-phase commit - a transfer between two SQLite banks', () => {
  let w: BankWorld;
  let env: IbacEnv;
  let seq = 0;

  /** A fresh pair of accounts (1000 each) and the transfer's participants. */
  async function transfer(amount: number, faults: { a?: string; b?: string } = {}): Promise<{ xid: string; alice: string; bob: string; legs: TwoPhaseParticipant[] }> {
    const n = ++seq;
    const alice = `alice${n}`;
    const bob = `bob${n}`;
    await openAccount(env, 'BANKA', alice, 1000);
    await openAccount(env, 'BANKB', bob, 1000);
    return {
      xid: `T${process.pid}-${n}`, alice, bob,
      legs: [
        { node: 'BANKA', app: BANK_APP.app, message: { account: alice, delta: -amount, ...(faults.a ? { fault: faults.a } : {}) } },
        { node: 'BANKB', app: BANK_APP.app, message: { account: bob, delta: amount, ...(faults.b ? { fault: faults.b } : {}) } },
      ],
    };
  }

  /** Runs `ibp 2pc …` (asynchronously: the fault proxy lives in this process and must keep forwarding). */
  function ibp2pc(args: string[], home: string): Promise<{ status: number | null; out: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [cliPath('ibp'), '2pc', ...args, '--home', home], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ status: err ? ((err as { code?: unknown }).code as number | null) ?? null : 0, out: `${stdout}${stderr}` });
      });
    });
  }

  before(async () => {
    w = await startBankWorld();
    env = await IbacEnv.create({ home: w.localHome });
  });
  after(async () => {
    await env?.close();
    await w?.close();
  });

  it('two-phase - a transfer commits on both banks: money moved, sum unchanged, decision logged and done', async () => {
    const t = await transfer(100);
    const r = await runTwoPhase(env, t.legs, { xid: t.xid });
    assert.equal(r.outcome, 'committed');
    assert.equal(r.complete, true);
    assert.equal(r.decidedBy, 'coordinator');
    assert.deepEqual(r.results.map((p) => [p.node, p.prepare.ok, p.phaseTwo?.acknowledged]), [['BANKA', true, true], ['BANKB', true, true]]);
    assert.equal(r.results[0]!.prepare.response!.json<{ vote: string }>().vote, 'yes');
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed, JSON.stringify(o));
    assert.equal(o.alice.balance, 900);
    assert.equal(o.bob.balance, 1100);
    assert.equal(o.alice.held + o.bob.held, 0);
    const log = DecisionLog.open(w.localHome);
    assert.equal(log.entry(t.xid).state, 'committed');
    assert.deepEqual(log.readDecision(t.xid)!.participants.map((p) => p.host?.port), [w.bankA.ports[0], w.proxy.port]);
  });

  it('two-phase - a participant votes no (insufficient funds): both roll back, nothing moves', async () => {
    const t = await transfer(5000);
    const r = await runTwoPhase(env, t.legs, { xid: t.xid });
    assert.equal(r.outcome, 'rolled_back');
    assert.equal(r.complete, true);
    assert.equal(r.results[0]!.prepare.ok, false);
    assert.equal(r.results[0]!.prepare.error!.code, 'IBP_ERR_SERVER_APP_FAILED');
    assert.match(r.results[0]!.prepare.error!.message, /insufficient funds/);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && !o.committed, JSON.stringify(o));
    assert.deepEqual([o.a, o.b], ['rolled_back', 'rolled_back']);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
  });

  it('two-phase - an app without prepare/commit/rollback cannot vote yes: IBP_ERR_2PC_NOT_SUPPORTED, the other leg rolls back', async () => {
    const t = await transfer(10);
    const r = await runTwoPhase(env, [t.legs[0]!, { node: 'BANKB', app: 'ibp_test_echo', message: { x: 1 } }], { xid: t.xid });
    assert.equal(r.outcome, 'rolled_back');
    assert.equal(r.results[1]!.prepare.error!.code, 'IBP_ERR_2PC_NOT_SUPPORTED');
    assert.equal(r.results[1]!.prepare.commStatus, 'COMPLETED');
    // A participant that answered no has rolled back itself: phase two goes only to the one that voted yes.
    assert.equal(r.results[1]!.phaseTwo, null);
    assert.equal(r.results[0]!.phaseTwo!.acknowledged, true);
    assert.equal(r.complete, true);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.equal(o.a, 'rolled_back');
    assert.equal(o.alice.balance, 1000);
    assert.equal(o.alice.held, 0);
  });

  it('two-phase - a prepare that sends its answer ahead and then fails votes no: the answer sent ahead is not a yes', async () => {
    const t = await transfer(10);
    const r = await runTwoPhase(env, [t.legs[0]!, { node: 'BANKB', app: AHEAD_APP.app, message: {} }], { xid: t.xid });
    assert.equal(r.results[1]!.prepare.ok, false, JSON.stringify(r.results[1]!.prepare.response?.json()));
    assert.match(r.results[1]!.prepare.error!.message, /prepare failed after sending its answer ahead/);
    assert.equal(r.outcome, 'rolled_back');
    assert.equal(r.complete, true);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.equal(o.a, 'rolled_back');
    assert.deepEqual([o.alice.balance, o.alice.held], [1000, 0]);
  });

  it('two-phase - participant crash before prepare (worker killed): rolled back on both, the sum unchanged', async () => {
    const t = await transfer(100, { a: 'crash_before_prepare' });
    const r = await runTwoPhase(env, t.legs, { xid: t.xid });
    assert.equal(r.outcome, 'rolled_back');
    assert.equal(r.results[0]!.prepare.ok, false);
    assert.equal(r.results[0]!.prepare.commStatus, 'ON_SENDING');
    assert.equal(r.complete, true, JSON.stringify(r.results.map((p) => p.phaseTwo)));
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && !o.committed, JSON.stringify(o));
    // BANKA never prepared: its row is the tombstone of a rollback of an unknown transfer (presumed abort).
    assert.equal(transferAccount(w.homeA, t.xid), null);
    assert.equal(transferAccount(w.homeB, t.xid), t.bob);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
  });

  it('two-phase - participant crash after prepare (its hold is durable): phase two rolls it back on both', async () => {
    const t = await transfer(100, { a: 'crash_after_prepare' });
    const r = await runTwoPhase(env, t.legs, { xid: t.xid });
    assert.equal(r.outcome, 'rolled_back');
    assert.equal(r.results[0]!.prepare.commStatus, 'ON_SENDING');
    assert.equal(r.complete, true);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    // BANKA had prepared (the hold was written) before its worker died: its row names the account (a rollback
    // of a transfer never prepared would have left a tombstone without one), and the hold was released.
    assert.deepEqual([o.a, o.b], ['rolled_back', 'rolled_back']);
    assert.equal(transferAccount(w.homeA, t.xid), t.alice);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
  });

  it('two-phase - a participant times out before the coordinator decides: its rollback stands, although every vote was yes', async () => {
    const t = await transfer(100);
    // BANKB prepares (durably) but holds its vote back until a decision is in the coordinator's log; BANKA, prepared
    // with a short timeout, hears nothing, asks the log (co-located), finds no decision and settles it to rollback.
    const decisionFile = join(w.localHome, 'file', '2pc', `${t.xid}.decision.json`);
    const legs = [t.legs[0]!, { ...t.legs[1]!, message: { ...(t.legs[1]!.message as object), fault: 'wait_after_prepare', waitFor: decisionFile } }];
    const r = await runTwoPhase(env, legs, { xid: t.xid, participantTimeoutMs: 300 });
    assert.deepEqual(r.results.map((p) => p.prepare.ok), [true, true], 'every participant voted yes');
    assert.equal(r.outcome, 'rolled_back');
    assert.match(r.decidedBy, /^participant BANK[AB]$/);
    assert.equal(DecisionLog.open(w.localHome).readDecision(t.xid)!.decision, 'rollback');
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.deepEqual([o.a, o.b], ['rolled_back', 'rolled_back']);
    assert.deepEqual([transferAccount(w.homeA, t.xid), transferAccount(w.homeB, t.xid)], [t.alice, t.bob]);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
  });

  it('two-phase - lost commit acknowledgement: the commit ran, its answer was lost; made again (idempotent) and acknowledged', async () => {
    const t = await transfer(100);
    // Through the proxy: the prepare of BANKB is the next connection, its first commit attempt the one after.
    const commitConn = w.proxy.connections.length + 1;
    w.proxy.setRule({ dir: 's2c', frame: 'RESPONSE', afterBytes: 0, action: 'reset', connection: commitConn });
    let r;
    try {
      r = await runTwoPhase(env, t.legs, { xid: t.xid, phaseTwoRetryMs: 20 });
    } finally {
      w.proxy.setRule(undefined);
    }
    assert.ok(w.proxy.connections[commitConn]?.fault, 'the first commit attempt was faulted');
    assert.equal(r.outcome, 'committed');
    assert.equal(r.complete, true);
    assert.equal(r.results[1]!.phaseTwo!.attempts, 2);
    assert.equal(r.results[1]!.phaseTwo!.error!.inDoubt, true);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed);
    assert.equal(o.alice.balance, 900);
    assert.equal(o.bob.balance, 1100);
  });

  it('two-phase - lost commit on every attempt: committed but incomplete; ibp 2pc recover finishes it', async () => {
    const t = await transfer(100);
    const commitConn = w.proxy.connections.length + 1;
    w.proxy.setRule({ dir: 'c2s', frame: 'REQUEST', afterBytes: 0, action: 'reset', connection: commitConn });
    let r;
    try {
      r = await runTwoPhase(env, t.legs, { xid: t.xid, phaseTwoAttempts: 1, participantTimeoutMs: 600_000 });
    } finally {
      w.proxy.setRule(undefined);
    }
    assert.equal(r.outcome, 'committed');
    assert.equal(r.complete, false);
    assert.equal(r.results[1]!.phaseTwo!.acknowledged, false);
    // BANKA committed; BANKB still holds it prepared, waiting: the transfer is half done until recovery.
    assert.equal(transferState(w.homeA, t.xid), 'committed');
    assert.equal(transferState(w.homeB, t.xid), 'prepared');
    const status = await ibp2pc(['status'], w.localHome);
    assert.match(status.out, new RegExp(`${t.xid}\\s+committing`));
    const rec = await ibp2pc(['recover'], w.localHome);
    assert.equal(rec.status, 0, rec.out);
    assert.match(rec.out, new RegExp(`${t.xid}\\s+committing\\s+commit\\s+coordinator\\s+done`));
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed, JSON.stringify(o));
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(DecisionLog.open(w.localHome).entry(t.xid).state, 'committed');
    assert.match((await ibp2pc(['recover'], w.localHome)).out, /nothing to recover/);
  });

  it('two-phase - lost commit, nobody recovers: the participant times out, reads the decision log (commit) and commits', async () => {
    const t = await transfer(100);
    const commitConn = w.proxy.connections.length + 1;
    w.proxy.setRule({ dir: 'c2s', frame: 'REQUEST', afterBytes: 0, action: 'reset', connection: commitConn });
    let r;
    try {
      r = await runTwoPhase(env, t.legs, { xid: t.xid, phaseTwoAttempts: 1, participantTimeoutMs: 3000 });
    } finally {
      w.proxy.setRule(undefined);
    }
    assert.equal(r.outcome, 'committed');
    assert.equal(r.complete, false);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed, JSON.stringify(o));
    assert.equal(o.bob.balance, 1100);
    // The coordinator's log still waits for the acknowledgement: recover sends the commit again (a no-op) and closes it.
    const rec = await ibp2pc(['recover', '--xid', t.xid], w.localHome);
    assert.equal(rec.status, 0, rec.out);
    assert.equal(DecisionLog.open(w.localHome).entry(t.xid).state, 'committed');
    assert.equal(transferState(w.homeB, t.xid), 'committed');
  });

  it('two-phase - the decision is asked over the network from the platform of the coordinator home', async () => {
    const log = DecisionLog.open(w.coordHome);
    log.decide('NET-commit-1', 'commit', [], 'coordinator');
    const ref = { node: 'COORD', home: '/nonexistent/home', id: log.coordinatorId, address: w.coordAddress };
    const o = { asker: 'BANKA', timeoutMs: 10_000, fileDir: w.homeA };
    assert.deepEqual(await askDecision(ref, 'NET-commit-1', { ...o, abortIfUndecided: true }), { xid: 'NET-commit-1', decision: 'commit', by: 'coordinator', via: 'network' });
    assert.deepEqual(await askDecision(ref, 'NET-open-1', { ...o, abortIfUndecided: false }), { xid: 'NET-open-1', decision: null, via: 'network' });
    // Undecided and the asker timed out: the log now says rollback, and the coordinator can no longer commit.
    const settled = await askDecision(ref, 'NET-open-1', { ...o, abortIfUndecided: true });
    assert.deepEqual([settled.decision, settled.by, settled.via], ['rollback', 'participant BANKA', 'network']);
    assert.equal(log.decide('NET-open-1', 'commit', [], 'coordinator').decision, 'rollback');
    await assert.rejects(askDecision({ ...ref, id: 'another-log' }, 'NET-commit-1', { ...o, abortIfUndecided: true }), { code: 'IBP_ERR_2PC_WRONG_COORDINATOR' });
    await assert.rejects(askDecision({ ...ref, address: null }, 'NET-commit-1', { ...o, abortIfUndecided: true }), { code: 'IBP_ERR_2PC_DECISION_UNREACHABLE' });
  });

  it('two-phase - bad arguments reject before anything is logged or sent', async () => {
    const leg = { node: 'BANKA', app: BANK_APP.app, message: {} };
    await assert.rejects(runTwoPhase(env, []), { code: 'IBP_ERR_CLIENT_BAD_ARGUMENT' });
    await assert.rejects(runTwoPhase(env, [leg, leg]), { code: 'IBP_ERR_CLIENT_BAD_ARGUMENT' });
    await assert.rejects(runTwoPhase(env, [leg], { xid: '../x' }), { code: 'IBP_ERR_CLIENT_BAD_ARGUMENT' });
    await assert.rejects(runTwoPhase(env, [{ ...leg, app: 'no_such_app' }], { xid: 'BAD-1' }), { code: 'IBP_ERR_REPLICA_UNKNOWN_APP' });
    assert.equal(DecisionLog.open(w.localHome).readBegin('BAD-1'), undefined);
  });
});
