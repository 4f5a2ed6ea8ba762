/**
 * Two-phase commit when the coordinator dies: the coordinator runs in a child process that kills itself
 * (SIGKILL, `IBP_2PC_FAULT`) at an exact step, and what it left is finished either by `ibp 2pc recover` in its
 * home or by the participants' own timeout (asking its decision log: directly when co-located, over the network
 * from the platform of its home otherwise). Every scenario checks the invariant on both SQLite databases.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { DecisionLog, IbacEnv, type TwoPhaseOptions, type TwoPhaseParticipant } from '../../../src/client/index.js';
import { REPO_ROOT, cliPath } from '../../../src/cli/scratch-cluster.js';
import {
  BANK_APP, openAccount, restartBankA, settledTransfer, startBankWorld, timeoutResolutions, transferState, unresolvedWarnings, type BankWorld,
} from '../../helpers/bank.js';
import { ParticipantRecords } from '../../../src/platform/index.js';
import { waitFor } from '../../helpers/cluster.js';

const COORDINATOR = join(REPO_ROOT, 'dist', 'test', 'helpers', 'two-phase-coordinator.js');

/** Runs a coordinator process; resolves with how it ended and what it printed. */
function runCoordinator(home: string, participants: TwoPhaseParticipant[], options: TwoPhaseOptions, fault?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [COORDINATOR, JSON.stringify({ home, participants, options })], {
      env: { ...process.env, ...(fault ? { IBP_2PC_FAULT: fault } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, out });
    });
  });
}

/** Runs `ibp 2pc …` asynchronously (the fault proxy lives in this process). */
function ibp2pc(args: string[], home: string): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath('ibp'), '2pc', ...args, '--home', home], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? Number((err as { code?: unknown }).code ?? -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('two-phase commit - the coordinator crashes', () => {
  let w: BankWorld;
  let env: IbacEnv;
  let seq = 0;

  async function transfer(amount: number): Promise<{ xid: string; alice: string; bob: string; legs: TwoPhaseParticipant[] }> {
    const n = ++seq;
    const alice = `ca${n}`;
    const bob = `cb${n}`;
    await openAccount(env, 'BANKA', alice, 1000);
    await openAccount(env, 'BANKB', bob, 1000);
    return {
      xid: `C${process.pid}-${n}`, alice, bob,
      legs: [
        { node: 'BANKA', app: BANK_APP.app, message: { account: alice, delta: -amount } },
        { node: 'BANKB', app: BANK_APP.app, message: { account: bob, delta: amount } },
      ],
    };
  }

  before(async () => {
    w = await startBankWorld();
    env = await IbacEnv.create({ home: w.localHome });
  });
  after(async () => {
    await env?.close();
    await w?.close();
  });

  it('coordinator crash before the decision, then ibp 2pc recover: rolled back on both (presumed abort)', async () => {
    const t = await transfer(100);
    const c = await runCoordinator(w.localHome, t.legs, { xid: t.xid, participantTimeoutMs: 600_000 }, 'before_decision');
    assert.equal(c.signal, 'SIGKILL', c.out);
    // Both prepared and holding the money; no decision logged.
    assert.deepEqual([transferState(w.homeA, t.xid), transferState(w.homeB, t.xid)], ['prepared', 'prepared']);
    assert.equal(DecisionLog.open(w.localHome).entry(t.xid).state, 'preparing');
    const rec = await ibp2pc(['recover'], w.localHome);
    assert.equal(rec.status, 0, rec.out);
    assert.match(rec.out, new RegExp(`${t.xid}\\s+preparing\\s+rollback\\s+recover\\s+done`));
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.deepEqual([o.a, o.b], ['rolled_back', 'rolled_back']);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
  });

  it('coordinator crash before the decision, nobody recovers: the participants time out and settle it to rollback', async () => {
    const t = await transfer(100);
    const c = await runCoordinator(w.localHome, t.legs, { xid: t.xid, participantTimeoutMs: 1500 }, 'before_decision');
    assert.equal(c.signal, 'SIGKILL', c.out);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.deepEqual([o.a, o.b], ['rolled_back', 'rolled_back']);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
    const d = DecisionLog.open(w.localHome).readDecision(t.xid)!;
    assert.equal(d.decision, 'rollback');
    assert.match(d.by, /^participant BANK[AB]$/);
    // The client-only coordinator home has no platform: the banks read its log directly (co-located).
    await waitFor(() => timeoutResolutions(w.homeA, t.xid).length > 0 && timeoutResolutions(w.homeB, t.xid).length > 0, 'the resolutions logged');
    assert.deepEqual(timeoutResolutions(w.homeA, t.xid).concat(timeoutResolutions(w.homeB, t.xid)).map((r) => r.via), ['local', 'local']);
    // A coordinator that came back late could no longer commit: the participant's rollback stands.
    assert.equal(DecisionLog.open(w.localHome).decide(t.xid, 'commit', [], 'coordinator').decision, 'rollback');
    const rec = await ibp2pc(['recover'], w.localHome);
    assert.equal(rec.status, 0, rec.out);
    assert.equal(DecisionLog.open(w.localHome).entry(t.xid).state, 'rolled_back');
  });

  it('coordinator crash after the decision (commit), then ibp 2pc recover: committed on both', async () => {
    const t = await transfer(100);
    const c = await runCoordinator(w.localHome, t.legs, { xid: t.xid, participantTimeoutMs: 600_000 }, 'after_decision');
    assert.equal(c.signal, 'SIGKILL', c.out);
    assert.equal(DecisionLog.open(w.localHome).entry(t.xid).state, 'committing');
    assert.deepEqual([transferState(w.homeA, t.xid), transferState(w.homeB, t.xid)], ['prepared', 'prepared']);
    const status = await ibp2pc(['status'], w.homeA);
    assert.match(status.out, new RegExp(`${t.xid}\\s+ibp_bank_transfer\\s+prepared\\s+CORE`));
    const rec = await ibp2pc(['recover'], w.localHome);
    assert.equal(rec.status, 0, rec.out);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed, JSON.stringify(o));
    assert.equal(o.alice.balance, 900);
    assert.equal(o.bob.balance, 1100);
    assert.equal(o.alice.held + o.bob.held, 0);
  });

  it('coordinator (with a platform in its home) crash after the decision: the participants time out, ask over the network, commit', async () => {
    const t = await transfer(100);
    const c = await runCoordinator(w.coordHome, t.legs, { xid: t.xid, participantTimeoutMs: 1500 }, 'after_decision');
    assert.equal(c.signal, 'SIGKILL', c.out);
    assert.equal(DecisionLog.open(w.coordHome).entry(t.xid).state, 'committing');
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed, JSON.stringify(o));
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
    // Each bank asked the COORD platform (the reserved app `ibp 2pc decision`), not the file.
    await waitFor(() => timeoutResolutions(w.homeA, t.xid).length > 0 && timeoutResolutions(w.homeB, t.xid).length > 0, 'the resolutions logged');
    assert.deepEqual([...timeoutResolutions(w.homeA, t.xid), ...timeoutResolutions(w.homeB, t.xid)], [{ decision: 'commit', via: 'network' }, { decision: 'commit', via: 'network' }]);
    // The participants' records named the COORD platform; recover closes the log (the commits are no-ops now).
    const rec = await ibp2pc(['recover'], w.coordHome);
    assert.equal(rec.status, 0, rec.out);
    assert.equal(DecisionLog.open(w.coordHome).entry(t.xid).state, 'committed');
  });

  it('decision out of reach: the prepared participant stays prepared, keeps asking, survives a platform restart, then commits', async () => {
    const t = await transfer(100);
    const c = await runCoordinator(w.localHome, t.legs, { xid: t.xid, participantTimeoutMs: 4000 }, 'after_decision');
    assert.equal(c.signal, 'SIGKILL', c.out);
    // Hide the client-only coordinator's log id: no participant can read its decision now (and it has no platform).
    const id = join(w.localHome, 'file', '2pc', 'coordinator.id');
    renameSync(id, `${id}.hidden`);
    let restored = false;
    try {
      assert.deepEqual([transferState(w.homeA, t.xid), transferState(w.homeB, t.xid)], ['prepared', 'prepared'], 'the deadline passed before the log was hidden');
      await waitFor(() => unresolvedWarnings(w.homeA, t.xid) > 0, 'BANKA found the decision out of reach', 30_000);
      assert.equal(transferState(w.homeA, t.xid), 'prepared');
      // A restart of BANKA's platform: its prepared state and record are on disk; new workers take them up.
      await restartBankA(w);
      assert.equal(transferState(w.homeA, t.xid), 'prepared');
      assert.equal(new ParticipantRecords(w.homeA).read(t.xid, BANK_APP.app)?.state, 'prepared');
      renameSync(`${id}.hidden`, id);
      restored = true;
    } finally {
      if (!restored) renameSync(`${id}.hidden`, id);
    }
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.ok(o.atomic && o.committed, JSON.stringify(o));
    assert.equal(o.alice.balance + o.bob.balance, 2000);
    assert.equal(o.alice.held + o.bob.held, 0);
    await waitFor(() => timeoutResolutions(w.homeA, t.xid).length > 0, 'the resolution logged');
    assert.deepEqual(timeoutResolutions(w.homeA, t.xid), [{ decision: 'commit', via: 'local' }]);
  });

  it('coordinator crash after logging the start, before any prepare: recover rolls back at every host, nothing was held', async () => {
    const t = await transfer(100);
    const c = await runCoordinator(w.localHome, t.legs, { xid: t.xid }, 'after_begin');
    assert.equal(c.signal, 'SIGKILL', c.out);
    const rec = await ibp2pc(['recover', '--xid', t.xid], w.localHome);
    assert.equal(rec.status, 0, rec.out);
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    // Presumed abort: each bank got a rollback of a transfer it never saw and keeps a tombstone against a late prepare.
    assert.deepEqual([o.a, o.b], ['rolled_back', 'rolled_back']);
    assert.equal(o.alice.balance + o.bob.balance, 2000);
  });

  it('a coordinator that runs to the end in its own process commits (the control case)', async () => {
    const t = await transfer(50);
    const c = await runCoordinator(w.coordHome, t.legs, { xid: t.xid });
    assert.equal(c.code, 0, c.out);
    assert.deepEqual(JSON.parse(c.out), { xid: t.xid, outcome: 'committed', complete: true, decidedBy: 'coordinator' });
    await waitFor(() => transferState(w.homeB, t.xid) === 'committed', 'committed at BANKB');
    const o = await settledTransfer(w, t.xid, t.alice, t.bob);
    assert.deepEqual([o.alice.balance, o.bob.balance], [950, 1050]);
  });
});
