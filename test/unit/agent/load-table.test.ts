import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, statSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoadTable } from '../../../src/agent/index.js';
import {
  LOAD_TABLE_HEADER_BYTES,
  LOAD_TABLE_PROBE,
  LOAD_TABLE_SLOT_BYTES,
  loadTableHomeSlot,
} from '../../../src/agent/load-table.js';
import { tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));
function tablePath(): string {
  const t = tempDir('ibp-load-');
  temps.push(t.cleanup);
  return join(t.dir, 'run', 'ibma', 'load.table');
}
const moduleUrl = new URL('../../../src/agent/load-table.js', import.meta.url).href;

/** Runs `body` in a fresh node process with `LoadTable` and `table` (opened on `path`) in scope. */
function runChild(path: string, body: string, timeoutMs = 20_000): Promise<string> {
  const script = `const { LoadTable } = await import(${JSON.stringify(moduleUrl)});
const table = LoadTable.open(${JSON.stringify(path)});
const out = [];
${body}
table.close();
process.stdout.write(JSON.stringify(out));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`child exited ${code ?? signal}: ${stderr}`));
    });
  });
}

/** `n` distinct keys sharing one home slot in a table of `slots` slots. */
function collidingKeys(n: number, slots: number): string[] {
  const bySlot = new Map<number, string[]>();
  for (let i = 0; i < 100_000; i++) {
    const key = `NODE/10.0.${i >> 8}.${i & 255}:18001`;
    const s = loadTableHomeSlot(key, slots);
    const list = bySlot.get(s) ?? [];
    list.push(key);
    if (list.length === n) return list;
    bySlot.set(s, list);
  }
  throw new Error('no collisions found');
}

describe('load table', () => {
  it('load table - a new table has the documented size and unknown keys read as undefined', () => {
    const path = tablePath();
    const t = LoadTable.open(path, 128);
    assert.equal(statSync(path).size, LOAD_TABLE_HEADER_BYTES + (128 + LOAD_TABLE_PROBE - 1) * LOAD_TABLE_SLOT_BYTES);
    assert.equal(readFileSync(path).subarray(0, 8).toString('latin1'), 'IBPLOAD1');
    assert.equal(t.read('ECIF/127.0.0.2:18001'), undefined);
    t.close();
  });

  it('load table - recordLoad and suspend keep each other\'s fields', () => {
    const t = LoadTable.open(tablePath());
    const key = 'ECIF/127.0.0.2:18001';
    const before = Date.now();
    t.recordLoad(key, 3, 8);
    assert.deepEqual({ ...t.read(key), updatedAtMs: 0 }, { busy: 3, total: 8, suspendedUntilMs: 0, updatedAtMs: 0 });
    assert.ok(t.read(key)!.updatedAtMs >= before);
    t.suspend(key, before + 60_000);
    assert.equal(t.read(key)?.busy, 3);
    assert.equal(t.read(key)?.suspendedUntilMs, before + 60_000);
    t.recordLoad(key, 1, 8);
    assert.equal(t.read(key)?.busy, 1);
    assert.equal(t.read(key)?.suspendedUntilMs, before + 60_000);
    t.suspend(key, 0);
    assert.equal(t.read(key)?.suspendedUntilMs, 0);
    t.close();
  });

  it('load table - two processes read each other\'s entries', async () => {
    const path = tablePath();
    const t = LoadTable.open(path);
    t.recordLoad('ECIF/127.0.0.2:18001', 5, 10);
    const seen = JSON.parse(await runChild(path, `
out.push(table.read('ECIF/127.0.0.2:18001'));
table.recordLoad('CRM/127.0.0.4:18001', 7, 9);
table.suspend('CRM/127.0.0.4:18002', 4102444800000);`)) as { busy: number; total: number }[];
    assert.equal(seen[0]?.busy, 5);
    assert.equal(seen[0]?.total, 10);
    assert.equal(t.read('CRM/127.0.0.4:18001')?.busy, 7);
    assert.equal(t.read('CRM/127.0.0.4:18001')?.total, 9);
    assert.equal(t.read('CRM/127.0.0.4:18002')?.suspendedUntilMs, 4102444800000);
    t.close();
  });

  it('load table - two processes writing at once leave only whole, correct entries', async () => {
    const path = tablePath();
    LoadTable.open(path).close();
    const writer = (prefix: string) => runChild(path, `
for (let round = 0; round < 50; round++)
  for (let i = 0; i < 100; i++) table.recordLoad('${prefix}/10.0.0.' + i + ':1', i, 100 + round);`);
    await Promise.all([writer('A'), writer('B')]);
    const t = LoadTable.open(path);
    let present = 0;
    for (const prefix of ['A', 'B']) {
      for (let i = 0; i < 100; i++) {
        const r = t.read(`${prefix}/10.0.0.${i}:1`);
        if (r === undefined) continue;
        present++;
        assert.equal(r.busy, i, `${prefix}${i} carries its own value`);
        assert.ok(r.total >= 100 && r.total < 150);
      }
    }
    assert.ok(present >= 190, `only ${present} of 200 entries survived`);
    t.close();
  });

  it('load table - corrupt bytes in a slot read as unknown, and the slot is reusable', () => {
    const path = tablePath();
    const t = LoadTable.open(path, 64);
    const key = 'ECIF/127.0.0.2:18001';
    t.recordLoad(key, 2, 4);
    const pos = LOAD_TABLE_HEADER_BYTES + loadTableHomeSlot(key, 64) * LOAD_TABLE_SLOT_BYTES;
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([0x7f]), 0, 1, pos + 8); // the busy field
    closeSync(fd);
    assert.equal(t.read(key), undefined);
    t.recordLoad(key, 3, 4);
    assert.equal(t.read(key)?.busy, 3);
    t.close();
  });

  it('load table - a file of random bytes reads as unknown everywhere', () => {
    const path = tablePath();
    LoadTable.open(path, 64).close();
    const size = statSync(path).size;
    const junk = Buffer.alloc(size - LOAD_TABLE_HEADER_BYTES);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    const fd = openSync(path, 'r+');
    writeSync(fd, junk, 0, junk.length, LOAD_TABLE_HEADER_BYTES);
    closeSync(fd);
    const t = LoadTable.open(path);
    for (let i = 0; i < 500; i++) assert.equal(t.read(`N/10.0.0.${i}:1`), undefined);
    t.close();
  });

  it('load table - a write for one key does not disturb keys sharing its home slot', () => {
    const t = LoadTable.open(tablePath(), 16);
    const keys = collidingKeys(3, 16);
    keys.forEach((k, i) => t.recordLoad(k, i + 1, 10));
    for (let round = 0; round < 20; round++) t.recordLoad(keys[1]!, 100 + round, 200);
    t.suspend(keys[2]!, 12345);
    assert.equal(t.read(keys[0]!)?.busy, 1);
    assert.equal(t.read(keys[1]!)?.busy, 119);
    assert.equal(t.read(keys[2]!)?.busy, 3);
    assert.equal(t.read(keys[2]!)?.suspendedUntilMs, 12345);
    assert.equal(t.read(keys[0]!)?.suspendedUntilMs, 0);
    t.close();
  });

  it('load table - when a probe window is full, the entry written longest ago is replaced', () => {
    let now = 1_000;
    const t = LoadTable.open(tablePath(), 16, { clock: () => now++ });
    const keys = collidingKeys(LOAD_TABLE_PROBE + 1, 16);
    keys.slice(0, LOAD_TABLE_PROBE).forEach((k, i) => t.recordLoad(k, i + 1, 10));
    t.recordLoad(keys[0]!, 1, 10); // key 0 is now the freshest, key 1 the oldest
    t.recordLoad(keys[LOAD_TABLE_PROBE]!, 99, 100);
    assert.equal(t.read(keys[LOAD_TABLE_PROBE]!)?.busy, 99);
    assert.equal(t.read(keys[1]!), undefined, 'the oldest entry was replaced');
    for (const k of [keys[0]!, ...keys.slice(2, LOAD_TABLE_PROBE)]) assert.notEqual(t.read(k), undefined, k);
    t.close();
  });

  it('load table - an existing file keeps its geometry, whatever slots a later opener asks for', () => {
    const path = tablePath();
    const a = LoadTable.open(path, 32);
    a.recordLoad('X/1.2.3.4:5', 4, 5);
    const b = LoadTable.open(path, 4096);
    assert.equal(b.slots, 32);
    assert.equal(b.read('X/1.2.3.4:5')?.busy, 4);
    a.close();
    b.close();
  });

  it('load table - a file with a bad header is re-initialised on open', () => {
    const path = tablePath();
    LoadTable.open(path, 32).close();
    writeFileSync(path, Buffer.alloc(10, 0xee));
    const t = LoadTable.open(path, 32);
    assert.equal(t.slots, 32);
    t.recordLoad('X/1.2.3.4:5', 1, 2);
    assert.equal(t.read('X/1.2.3.4:5')?.total, 2);
    t.close();
  });

  it('load table - after close, reads are undefined and writes do nothing', () => {
    const t = LoadTable.open(tablePath());
    t.recordLoad('X/1.2.3.4:5', 1, 2);
    t.close();
    t.close();
    assert.equal(t.read('X/1.2.3.4:5'), undefined);
    t.recordLoad('X/1.2.3.4:5', 1, 2);
  });
});
