/**
 * A load table this process may not write (another user's file, a run/ it cannot create files in) is opened
 * read-only: the process still sees what others observed, its own writes are dropped, and nothing throws — the
 * table is advice, so a client must never fail because of it.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoadTable } from '../../../src/agent/index.js';

const moduleUrl = new URL('../../../src/agent/load-table.js', import.meta.url).href;
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/**
 * Runs `body` with `LoadTable` in scope as a user who may not write `dir`: as root, in a child process of uid
 * nobody; otherwise in this process after taking away the write permission (a non-root user cannot write a
 * 0444 file or create one in a 0555 directory).
 */
function asOtherUser(dir: string, body: (path: string) => unknown): unknown {
  const path = join(dir, 'load.table');
  if (!isRoot) {
    if (existsSync(path)) chmodSync(path, 0o444);
    chmodSync(dir, 0o555);
    try {
      return body(path);
    } finally {
      chmodSync(dir, 0o755);
    }
  }
  const script = `const { LoadTable } = await import(${JSON.stringify(moduleUrl)});
const path = ${JSON.stringify(path)};
const out = (${body.toString()})(path, LoadTable);
process.stdout.write(JSON.stringify(out ?? null));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

describe('load table - not writable by this process', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const newDir = (): string => {
    const base = mkdtempSync(join(tmpdir(), 'ibp-load-ro-'));
    chmodSync(base, 0o755); // the other user must reach it
    const dir = join(base, 'run', 'ibma');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    dirs.push(base);
    return dir;
  };

  it('another user\'s table opens read-only: its entries are read, writes are dropped, nothing throws', () => {
    const dir = newDir();
    const owner = LoadTable.open(join(dir, 'load.table'), 64);
    owner.recordLoad('ECIF/127.0.0.2:18001', 3, 8);
    owner.suspend('ECIF/127.0.0.2:18002', 4102444800000);
    chmodSync(join(dir, 'load.table'), 0o644);
    const before = readFileSync(join(dir, 'load.table'));
    const seen = asOtherUser(dir, (path: string, Table = LoadTable) => {
      const t = Table.open(path, 64);
      const r = {
        readOnly: t.readOnly,
        load: t.read('ECIF/127.0.0.2:18001'),
        suspended: t.read('ECIF/127.0.0.2:18002')?.suspendedUntilMs,
      };
      t.recordLoad('ECIF/127.0.0.2:18001', 7, 8);
      t.suspend('ECIF/127.0.0.3:18001', 4102444800000);
      const after = { busy: t.read('ECIF/127.0.0.2:18001')?.busy, other: t.read('ECIF/127.0.0.3:18001') ?? null };
      t.close();
      return { ...r, after };
    }) as { readOnly: boolean; load: { busy: number; total: number }; suspended: number; after: { busy: number; other: unknown } };
    assert.equal(seen.readOnly, true);
    assert.equal(seen.load.busy, 3);
    assert.equal(seen.load.total, 8);
    assert.equal(seen.suspended, 4102444800000);
    assert.deepEqual(seen.after, { busy: 3, other: null }, 'its own writes were dropped');
    assert.deepEqual(readFileSync(join(dir, 'load.table')), before, 'the file is unchanged');
    assert.equal(owner.read('ECIF/127.0.0.2:18001')?.busy, 3);
    owner.close();
  });

  it('no table and none can be made: an empty read-only table, not an error', () => {
    const dir = newDir();
    const seen = asOtherUser(dir, (path: string, Table = LoadTable) => {
      const t = Table.open(path, 64);
      t.recordLoad('X/1.2.3.4:5', 1, 2);
      const r = { readOnly: t.readOnly, entry: t.read('X/1.2.3.4:5') ?? null };
      t.close();
      t.close();
      return r;
    });
    assert.deepEqual(seen, { readOnly: true, entry: null });
    assert.equal(existsSync(join(dir, 'load.table')), false);
  });

  it('a writable table is not read-only', () => {
    const t = LoadTable.open(join(newDir(), 'load.table'), 64);
    assert.equal(t.readOnly, false);
    t.close();
  });
});
