import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoadTable, type SnapshotNode } from '../../../src/agent/index.js';
import { HostChooser } from '../../../src/client/host-choice.js';

const node: SnapshotNode = {
  name: 'ECIF',
  invalid: false,
  keyExp: '',
  newKeyEnableAt: 0,
  oldKeyDisableAt: 0,
  kv: {},
  hosts: [
    { ip: '127.0.0.1', port: 1001, clientOnly: false, invalid: false },
    { ip: '127.0.0.1', port: 1002, clientOnly: false, invalid: false },
    { ip: '127.0.0.1', port: 1003, clientOnly: false, invalid: true },
    { ip: '127.0.0.1', port: 1004, clientOnly: true, invalid: false },
  ],
};

function withTable(fn: (t: LoadTable) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-hc-'));
  const t = LoadTable.open(join(dir, 'load.table'));
  try {
    fn(t);
  } finally {
    t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('host choice - invalid and client-only hosts are never candidates; equal loads rotate', () => {
  withTable((t) => {
    const c = new HostChooser(t);
    const firsts = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const order = c.order(node);
      assert.deepEqual(order.map((h) => h.port).sort(), [1001, 1002]);
      firsts.add(order[0]!.port);
    }
    assert.equal(firsts.size, 2, 'round-robin among equal loads');
  });
});

test('host choice - the least-loaded host comes first; suspended hosts are left out until the time passes', () => {
  withTable((t) => {
    const c = new HostChooser(t);
    t.recordLoad('ECIF/127.0.0.1:1001', 9, 10);
    t.recordLoad('ECIF/127.0.0.1:1002', 1, 10);
    for (let i = 0; i < 3; i++) assert.equal(c.order(node)[0]!.port, 1002);
    t.suspend('ECIF/127.0.0.1:1002', Date.now() + 60_000);
    assert.deepEqual(c.order(node).map((h) => h.port), [1001]);
    t.suspend('ECIF/127.0.0.1:1002', Date.now() - 1);
    assert.equal(c.order(node).length, 2);
  });
});
