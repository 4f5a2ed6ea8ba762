import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PEER_LIVE_MS, SessionTable } from '../../../src/registry/sessions.js';
import { ViewWaiters } from '../../../src/registry/view-waiters.js';

describe('view waiters - parked long-polls', () => {
  test('a publish for the node wakes its waiters and only theirs', async () => {
    const w = new ViewWaiters();
    const a = w.wait('ECIF', 60_000);
    const b = w.wait('CORE', 60_000);
    assert.equal(w.size, 2);
    w.notify(['ECIF']);
    assert.equal(await a, 'published');
    assert.equal(w.size, 1);
    w.closeAll();
    assert.equal(await b, 'closed');
  });

  test('a wait ends with timeout when nothing is published', async () => {
    const w = new ViewWaiters();
    const t0 = Date.now();
    const keepAlive = setInterval(() => undefined, 1000); // the waiter's timer is unref'd (a server keeps the loop alive)
    assert.equal(await w.wait('ECIF', 30), 'timeout');
    clearInterval(keepAlive);
    assert.ok(Date.now() - t0 >= 25);
    assert.equal(w.size, 0);
  });

  test('a caller going away ends its wait; after closeAll every wait ends at once', async () => {
    const w = new ViewWaiters();
    const ac = new AbortController();
    const p = w.wait('ECIF', 60_000, ac.signal);
    ac.abort();
    assert.equal(await p, 'closed');
    assert.equal(w.size, 0);
    w.closeAll();
    assert.equal(await w.wait('ECIF', 60_000), 'closed');
  });
});

describe('sessions - who talked to the registry lately', () => {
  test('heartbeats are listed with their load until 3 periods pass without one', () => {
    let now = 1_000_000;
    const s = new SessionTable(() => now);
    s.heartbeat('ECIF', '127.0.0.2:40000', { role: 'ibas', host: { ip: '127.0.0.2', port: 18001 }, pid: 42, load: { busy: 1, total: 4 } });
    now += 1000;
    s.heartbeat('ECIF', '127.0.0.2:40001', { role: 'ibas', host: { ip: '127.0.0.2', port: 18001 }, pid: 42, load: { busy: 3, total: 4 } });
    let rows = s.rows();
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]!.load, { busy: 3, total: 4 });
    assert.equal(rows[0]!.sinceMs, 1_000_000);
    assert.equal(rows[0]!.lastSeenMs, 1_001_000);
    now += PEER_LIVE_MS + 1;
    rows = s.rows();
    assert.equal(rows.length, 0);
  });

  test("an agent's long-poll row is folded into its heartbeat row; admin clients are listed for 60 s", () => {
    let now = 5_000_000;
    const s = new SessionTable(() => now);
    s.viewPoll('CORE', '127.0.0.3:5000', 77, 4)(); // a poll answered at once
    assert.deepEqual(s.rows().map((r) => r.role), ['view']);
    s.heartbeat('CORE', '127.0.0.3:5001', { role: 'ibma', host: { ip: '127.0.0.3', port: 10601 }, pid: 77 });
    s.admin('127.0.0.1:6000', 99);
    assert.deepEqual(s.rows().map((r) => `${r.role}:${r.node}`), ['ibma:CORE', 'admin:-']);
    now += 30_000;
    assert.deepEqual(s.rows().map((r) => r.role), ['admin']);
    now += 31_000;
    assert.deepEqual(s.rows(), []);
  });

  test('a parked long-poll keeps its view row live past the expiry; once released the expiry counts from then', () => {
    let now = 7_000_000;
    const s = new SessionTable(() => now);
    const release = s.viewPoll('CORE', '127.0.0.3:5000', 77, 4);
    assert.equal(s.openRequests, 1);
    now += PEER_LIVE_MS * 4; // a 60 s hold
    const rows = s.rows();
    assert.deepEqual(rows.map((r) => `${r.role}:${r.node}`), ['view:CORE']);
    assert.equal(rows[0]!.lastSeenMs, now, 'an open poll is seen now');
    release();
    release(); // idempotent
    assert.equal(s.openRequests, 0);
    now += PEER_LIVE_MS;
    assert.equal(s.rows().length, 1);
    now += 1;
    assert.deepEqual(s.rows(), []);
  });
});
