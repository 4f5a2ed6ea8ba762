// ibp_bank_transfer: one leg of a money transfer between accounts kept in SQLite, one database per node
// (<home>/file/bank.db), as a two-phase-commit participant (docs/2pc.md). A transfer of 100 from alice on node
// BANKA to bob on node BANKB is, for the coordinator (runTwoPhase in the client library):
//
//   { node: 'BANKA', app: 'ibp_bank_transfer', message: { account: 'alice', delta: -100 } }
//   { node: 'BANKB', app: 'ibp_bank_transfer', message: { account: 'bob',   delta:  100 } }
//
// prepare(ctx, xid) reserves the amount (a debit holds it: `held` grows, `balance` does not move yet) and records
// the transfer as `prepared`, in one SQLite transaction, durable before the vote (WAL, synchronous=FULL).
// commit(ctx, xid) moves the money and releases the hold; rollback(ctx, xid) releases the hold. Both are
// idempotent: a repeated commit of a committed transfer is OK; commit of an unknown one is an error; rollback of
// an unknown one is OK (presumed abort) and leaves a tombstone, so a prepare that arrives late is refused.
//
// Plain calls (the default export) open accounts and read them: {op:'open',account,balance},
// {op:'balance',account}, {op:'audit'} (every account and transfer).
//
// better-sqlite3 is a native module, so it is not bundled into the package: it must be resolvable from so/ (a
// node_modules above it) or through NODE_PATH in the platform's environment.
//
// Fault injection for the tests (only when the platform runs with IBP_BANK_FAULTS=1): a prepare message with
// "fault": "crash_before_prepare" | "crash_after_prepare" kills the worker (SIGKILL) at that point;
// "fault": "wait_after_prepare", "waitFor": PATH holds the vote back (the prepare is durable already) until the
// file PATH exists (at most 30 s): a slow participant, so that another one's timeout settles the decision first.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');

/** Open databases by path (one per home; a worker serves one home). */
const dbs = new Map();

function db(ctx) {
  const path = ctx.pathOfFile('bank.db');
  let d = dbs.get(path);
  if (!d) {
    d = new Database(path);
    d.pragma('journal_mode = WAL');
    d.pragma('synchronous = FULL');
    d.pragma('busy_timeout = 10000');
    d.exec(`
      CREATE TABLE IF NOT EXISTS accounts (
        id      TEXT PRIMARY KEY,
        balance INTEGER NOT NULL CHECK (balance >= 0),
        held    INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= balance)
      );
      CREATE TABLE IF NOT EXISTS transfers (
        xid        TEXT PRIMARY KEY,
        state      TEXT NOT NULL CHECK (state IN ('prepared', 'committed', 'rolled_back')),
        account    TEXT,
        delta      INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
      );`);
    dbs.set(path, d);
  }
  return d;
}

function fault(msg, point) {
  if (process.env.IBP_BANK_FAULTS !== '1' || msg.fault !== point) return;
  if (point !== 'wait_after_prepare') process.kill(process.pid, 'SIGKILL');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 1500 && typeof msg.waitFor === 'string' && !existsSync(msg.waitFor); i++) Atomics.wait(pause, 0, 0, 20);
}

const now = () => new Date().toISOString();
const holdOf = (delta) => (delta < 0 ? -delta : 0);

export function prepare(ctx, xid) {
  const msg = ctx.requestJson();
  if (typeof msg.account !== 'string' || !Number.isSafeInteger(msg.delta) || msg.delta === 0) {
    throw new Error('a transfer leg is { account: string, delta: non-zero integer }');
  }
  fault(msg, 'crash_before_prepare');
  const d = db(ctx);
  const available = d.transaction(() => {
    const t = d.prepare('SELECT state FROM transfers WHERE xid = ?').get(xid);
    if (t && t.state !== 'prepared') throw new Error(`transfer ${xid} is already ${t.state}`);
    const a = d.prepare('SELECT balance, held FROM accounts WHERE id = ?').get(msg.account);
    if (!a) throw new Error(`no account ${msg.account}`);
    if (t) return a.balance - a.held; // prepared before: the same vote again
    if (a.balance - a.held < holdOf(msg.delta)) throw new Error(`insufficient funds in ${msg.account}: ${a.balance - a.held} available, ${-msg.delta} asked`);
    d.prepare('UPDATE accounts SET held = held + ? WHERE id = ?').run(holdOf(msg.delta), msg.account);
    d.prepare('INSERT INTO transfers (xid, state, account, delta, updated_at) VALUES (?, ?, ?, ?, ?)').run(xid, 'prepared', msg.account, msg.delta, now());
    return a.balance - a.held - holdOf(msg.delta);
  }).immediate();
  ctx.respond({ xid, account: msg.account, vote: 'yes', available });
  fault(msg, 'crash_after_prepare');
  fault(msg, 'wait_after_prepare');
  return 0;
}

export function commit(ctx, xid) {
  const d = db(ctx);
  d.transaction(() => {
    const t = d.prepare('SELECT state, account, delta FROM transfers WHERE xid = ?').get(xid);
    if (!t) throw new Error(`commit of unknown transfer ${xid}`);
    if (t.state === 'committed') return;
    if (t.state === 'rolled_back') throw new Error(`commit of transfer ${xid}, which was rolled back`);
    d.prepare('UPDATE accounts SET balance = balance + ?, held = held - ? WHERE id = ?').run(t.delta, holdOf(t.delta), t.account);
    d.prepare('UPDATE transfers SET state = ?, updated_at = ? WHERE xid = ?').run('committed', now(), xid);
  }).immediate();
  ctx.respond({ xid, state: 'committed' });
  return 0;
}

export function rollback(ctx, xid) {
  const d = db(ctx);
  d.transaction(() => {
    const t = d.prepare('SELECT state, account, delta FROM transfers WHERE xid = ?').get(xid);
    if (!t) {
      // Presumed abort: nothing was prepared here. The tombstone refuses a prepare that arrives late.
      d.prepare('INSERT INTO transfers (xid, state, account, delta, updated_at) VALUES (?, ?, NULL, 0, ?)').run(xid, 'rolled_back', now());
      return;
    }
    if (t.state === 'rolled_back') return;
    if (t.state === 'committed') throw new Error(`rollback of transfer ${xid}, which was committed`);
    d.prepare('UPDATE accounts SET held = held - ? WHERE id = ?').run(holdOf(t.delta), t.account);
    d.prepare('UPDATE transfers SET state = ?, updated_at = ? WHERE xid = ?').run('rolled_back', now(), xid);
  }).immediate();
  ctx.respond({ xid, state: 'rolled_back' });
  return 0;
}

export default function somain(ctx) {
  const msg = ctx.requestJson();
  const d = db(ctx);
  if (msg.op === 'open') {
    if (typeof msg.account !== 'string' || !Number.isSafeInteger(msg.balance) || msg.balance < 0) throw new Error('open needs { account, balance >= 0 }');
    d.prepare('INSERT INTO accounts (id, balance, held) VALUES (?, ?, 0)').run(msg.account, msg.balance);
    ctx.respond({ account: msg.account, balance: msg.balance });
  } else if (msg.op === 'balance') {
    const a = d.prepare('SELECT id AS account, balance, held FROM accounts WHERE id = ?').get(msg.account);
    if (!a) throw new Error(`no account ${msg.account}`);
    ctx.respond(a);
  } else if (msg.op === 'audit') {
    ctx.respond({
      accounts: d.prepare('SELECT id AS account, balance, held FROM accounts ORDER BY id').all(),
      transfers: d.prepare('SELECT xid, state, account, delta FROM transfers ORDER BY xid').all(),
    });
  } else {
    throw new Error(`unknown op ${JSON.stringify(msg.op)} (open, balance, audit; transfers go through 2PC)`);
  }
  return 0;
}
