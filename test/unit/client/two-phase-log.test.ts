import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DecisionLog, answerDecisionRequest, decodeTwoPhaseEnvelope, encodeTwoPhaseEnvelope, isXid, looksLikeTwoPhaseEnvelope,
  readCoordinatorId, type TwoPhaseHeader,
} from '../../../src/client/index.js';
import { newXid } from '../../../src/client/two-phase-log.js';
import { answerDecisionQuery } from '../../../src/client/two-phase-decision.js';
import { decodeDecisionQuery } from '../../../src/client/two-phase-wire.js';

const homes: string[] = [];
function home(): string {
  const h = mkdtempSync(join(tmpdir(), 'ibp-2pc-log-'));
  homes.push(h);
  return h;
}
after(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

const P = [{ node: 'BANKA', app: 'ibp_bank_transfer', host: { ip: '127.0.0.1', port: 1 } }];

describe('2pc decision log', () => {
  it('decision log - open creates file/2pc/ with a coordinator id that stays the same', () => {
    const h = home();
    const a = DecisionLog.open(h);
    assert.match(a.coordinatorId, /^[0-9a-f]{24}$/);
    assert.equal(DecisionLog.open(h).coordinatorId, a.coordinatorId);
    assert.equal(readCoordinatorId(h), a.coordinatorId);
    // Created whole under a temporary name and linked: only the id is left, no temporary file.
    assert.deepEqual(readdirSync(join(h, 'file', '2pc')), ['coordinator.id']);
    assert.equal(readCoordinatorId(home()), undefined);
    assert.throws(() => DecisionLog.open(home(), { create: false }), { code: 'IBP_ERR_2PC_LOG' });
  });

  it('decision log - the first decision stands: a later one, either way, gets the first back and the file is unchanged', () => {
    const log = DecisionLog.open(home());
    const first = log.decide('X1', 'rollback', [], 'participant BANKB');
    const path = join(log.dir, 'X1.decision.json');
    const bytes = readFileSync(path, 'utf8');
    const again = log.decide('X1', 'commit', P, 'coordinator');
    assert.deepEqual(again, first);
    assert.equal(again.decision, 'rollback');
    assert.equal(readFileSync(path, 'utf8'), bytes);
    // No temporary file is left behind.
    assert.deepEqual(readdirSync(log.dir).filter((n) => n.endsWith('.tmp')), []);
  });

  it('decision log - a transaction goes preparing → committing → committed as its records are written', () => {
    const log = DecisionLog.open(home());
    log.writeBegin({ xid: 'X2', coordinatorNode: 'CORE', participantTimeoutMs: 1000, participants: P.map((p) => ({ ...p, host: null })) });
    assert.equal(log.entry('X2').state, 'preparing');
    log.decide('X2', 'commit', P, 'coordinator');
    assert.equal(log.entry('X2').state, 'committing');
    log.markDone('X2');
    assert.equal(log.entry('X2').state, 'committed');
    log.decide('X3', 'rollback', [], 'recover');
    assert.deepEqual(log.list().map((e) => [e.xid, e.state]), [['X2', 'committed'], ['X3', 'rolling_back']]);
    assert.deepEqual(log.readDecision('X2')!.participants, P);
    assert.equal(log.readDecision('X2')!.format, 'ibp-2pc/1');
  });

  it('decision log - a record that is not JSON is reported, not taken for "no decision"', () => {
    const log = DecisionLog.open(home());
    log.decide('X4', 'commit', [], 'coordinator');
    rmSync(join(log.dir, 'X4.decision.json'));
    assert.equal(log.readDecision('X4'), undefined);
    const { writeFileSync } = require_fs();
    writeFileSync(join(log.dir, 'X5.decision.json'), '{not json');
    assert.throws(() => log.readDecision('X5'), { code: 'IBP_ERR_2PC_LOG' });
  });

  it('transaction ids - letters, digits and _.- only, 1-56 chars, no path tricks', () => {
    for (const ok of ['a', 'T1-2.3_x', 'A'.repeat(56), newXid('BANK A/../x')]) assert.ok(isXid(ok), ok);
    for (const bad of ['', '.x', '-x', '_x', 'a/b', 'a..b', 'A'.repeat(57), 'a b', 42, null]) assert.ok(!isXid(bad), String(bad));
  });
});

describe('2pc envelope', () => {
  const header: TwoPhaseHeader = {
    v: 1, xid: 'X9', phase: 'prepare', timeoutMs: 5000,
    coordinator: { node: 'CORE', home: '/h', id: 'abc', address: { ip: '127.0.0.1', port: 18001 } },
  };

  it('envelope - an object body round-trips as JSON, bytes and strings as base64, none as empty', () => {
    const obj = encodeTwoPhaseEnvelope(header, { account: 'a', delta: -1 });
    assert.ok(looksLikeTwoPhaseEnvelope(obj));
    assert.deepEqual(decodeTwoPhaseEnvelope(obj), { header, body: Buffer.from('{"account":"a","delta":-1}') });
    assert.deepEqual(decodeTwoPhaseEnvelope(encodeTwoPhaseEnvelope(header, Buffer.from([0, 255, 1]))).body, Buffer.from([0, 255, 1]));
    assert.equal(decodeTwoPhaseEnvelope(encodeTwoPhaseEnvelope(header, 'plain text')).body.toString(), 'plain text');
    assert.equal(decodeTwoPhaseEnvelope(encodeTwoPhaseEnvelope({ ...header, phase: 'commit' })).body.length, 0);
  });

  it('envelope - ordinary messages are not taken for envelopes', () => {
    for (const m of ['{"ibp2pc" :1}', '{ "ibp2pc":{}}', 'hello', '{"ibp2pc":', '']) assert.ok(!looksLikeTwoPhaseEnvelope(Buffer.from(m)), m);
  });

  it('envelope - every bad field is refused with IBP_ERR_2PC_BAD_ENVELOPE', () => {
    const bad = (h: unknown): Buffer => Buffer.from(JSON.stringify({ ibp2pc: h }));
    const cases: unknown[] = [
      null, { ...header, v: 2 }, { ...header, xid: '../x' }, { ...header, phase: 'maybe' }, { ...header, timeoutMs: 0 },
      { ...header, timeoutMs: 1.5 }, { ...header, coordinator: { node: 'C' } }, { ...header, coordinator: { ...header.coordinator, id: '' } },
      { ...header, coordinator: { ...header.coordinator, address: { ip: '1.2.3.4', port: 70000 } } },
    ];
    for (const h of cases) assert.throws(() => decodeTwoPhaseEnvelope(bad(h)), { code: 'IBP_ERR_2PC_BAD_ENVELOPE' }, JSON.stringify(h));
    assert.throws(() => decodeTwoPhaseEnvelope(Buffer.from('{"ibp2pc":{')), { code: 'IBP_ERR_2PC_BAD_ENVELOPE' });
  });
});

describe('2pc decision query (the coordinator side)', () => {
  it('decision query - answers what is logged; null when undecided unless the asker timed out, then rollback by that participant', () => {
    const h = home();
    const log = DecisionLog.open(h);
    log.writeBegin({ xid: 'Q1', coordinatorNode: 'CORE', participantTimeoutMs: 1000, participants: P.map((p) => ({ ...p, host: null })) });
    log.decide('Q2', 'commit', P, 'coordinator');
    const q = { coordinatorId: log.coordinatorId, asker: 'BANKA' };
    assert.deepEqual(answerDecisionQuery(h, { ...q, xid: 'Q2', abortIfUndecided: true }), { xid: 'Q2', decision: 'commit', by: 'coordinator' });
    assert.deepEqual(answerDecisionQuery(h, { ...q, xid: 'Q1', abortIfUndecided: false }), { xid: 'Q1', decision: null });
    assert.equal(log.readDecision('Q1'), undefined);
    const body = answerDecisionRequest(h, Buffer.from(JSON.stringify({ ...q, xid: 'Q1', abortIfUndecided: true })));
    assert.deepEqual(JSON.parse(body.toString()), { xid: 'Q1', decision: 'rollback', by: 'participant BANKA' });
    // The participants come from the begin record, so recovery knows where to send the rollback.
    assert.deepEqual(log.readDecision('Q1')!.participants, P.map((p) => ({ ...p, host: null })));
  });

  it('decision query - a home whose log has another id refuses (IBP_ERR_2PC_WRONG_COORDINATOR) and writes nothing', () => {
    const h = home();
    DecisionLog.open(h);
    assert.throws(() => answerDecisionQuery(h, { xid: 'Q3', coordinatorId: 'other', asker: 'B', abortIfUndecided: true }), { code: 'IBP_ERR_2PC_WRONG_COORDINATOR' });
    assert.throws(() => answerDecisionQuery(home(), { xid: 'Q3', coordinatorId: 'other', asker: 'B', abortIfUndecided: true }), { code: 'IBP_ERR_2PC_WRONG_COORDINATOR' });
    assert.equal(DecisionLog.open(h).readDecision('Q3'), undefined);
    assert.throws(() => decodeDecisionQuery(Buffer.from('{"xid":"Q3"}')), { code: 'IBP_ERR_2PC_BAD_ENVELOPE' });
  });
});

function require_fs(): typeof import('node:fs') {
  return { ...(globalThis as unknown as { __fs?: typeof import('node:fs') }).__fs, ...fsMod };
}
import * as fsMod from 'node:fs';
