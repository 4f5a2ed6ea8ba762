import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoardReader, BoardSlot, createBoard } from '../../../src/platform/bulletin-board.js';

function withBoard(slots: number, fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-board-'));
  try {
    const path = join(dir, 'b.board');
    createBoard(path, slots, 4242);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bulletin board - worker slots are seen by the reader with state, counters and app', () => {
  withBoard(4, (path) => {
    const a = new BoardSlot(path, 0, 1, 1001);
    const b = new BoardSlot(path, 2, 2, 1002);
    a.set('busy', { connections: 3, transactions: 17, deadlineMs: Date.now() + 5000, app: 'ibp_test_echo' });
    b.set('idle', { connections: 1, transactions: 5, app: '' });
    const r = new BoardReader(path);
    const v = r.view();
    assert.equal(v.masterPid, 4242);
    assert.equal(v.slots.length, 4);
    assert.deepEqual(
      { state: v.slots[0]!.state, pid: v.slots[0]!.pid, index: v.slots[0]!.index, conns: v.slots[0]!.connections, tx: v.slots[0]!.transactions, app: v.slots[0]!.app },
      { state: 'busy', pid: 1001, index: 1, conns: 3, tx: 17, app: 'ibp_test_echo' },
    );
    assert.equal(v.slots[1]!.state, 'empty');
    assert.equal(v.slots[2]!.state, 'idle');
    assert.ok(v.slots[0]!.deadlineMs > Date.now());
    r.refresh();
    assert.equal(r.stateOf(0), 'busy');
    assert.equal(r.connectionsOf(2), 1);
    r.close();
    a.close();
    b.close();
  });
});

test('bulletin board - load counts busy and live workers; the waiting flag travels to workers', () => {
  withBoard(3, (path) => {
    const s = [0, 1, 2].map((i) => new BoardSlot(path, i, i + 1, 2000 + i));
    s[0]!.set('busy');
    s[1]!.set('idle');
    s[2]!.set('retiring');
    assert.deepEqual(s[1]!.load(), { busy: 1, total: 2, waiting: false });
    const r = new BoardReader(path);
    r.setWaiting(true);
    assert.equal(s[0]!.load().waiting, true);
    r.clearSlot(0);
    assert.deepEqual(s[1]!.load(), { busy: 0, total: 1, waiting: true });
    r.close();
    for (const x of s) x.close();
  });
});

test('bulletin board - a file that is not a board is refused; a slot outside the board is refused', () => {
  withBoard(2, (path) => {
    assert.throws(() => new BoardSlot(path, 2, 3), RangeError);
    writeFileSync(path, Buffer.alloc(256));
    assert.throws(() => new BoardReader(path), /not an ibas bulletin board/);
  });
});
