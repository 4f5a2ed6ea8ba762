import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppStatsRecorder, AppStatsTable, STATS_WINDOW_SECONDS, readStatsFile } from '../../../src/platform/app-stats.js';

test('app stats - a worker counts per app and hands the counts over once', () => {
  const r = new AppStatsRecorder();
  assert.equal(r.take(), undefined);
  r.record('a', 2, true);
  r.record('a', 6, false);
  r.record('b', 1, true);
  assert.deepEqual(r.take(), [
    { app: 'a', count: 2, errors: 1, totalMs: 8, maxMs: 6 },
    { app: 'b', count: 1, errors: 0, totalMs: 1, maxMs: 1 },
  ]);
  assert.equal(r.take(), undefined);
});

test('app stats - the master keeps totals and rates over the last complete seconds', () => {
  const t = new AppStatsTable();
  const base = 1_000_000_000_000; // a whole second
  // 30 calls in each of three seconds, 10 ms each; one slow call of 50 ms; then the current (partial) second.
  for (let s = 0; s < STATS_WINDOW_SECONDS; s++) t.merge([{ app: 'a', count: 30, errors: s === 0 ? 3 : 0, totalMs: 300, maxMs: s === 1 ? 50 : 10 }], base + s * 1000 + 500);
  t.merge([{ app: 'a', count: 999, errors: 0, totalMs: 999, maxMs: 1 }], base + STATS_WINDOW_SECONDS * 1000 + 100);
  const snap = t.snapshot(42, base + STATS_WINDOW_SECONDS * 1000 + 200);
  assert.equal(snap.masterPid, 42);
  assert.deepEqual(snap.apps, [{ app: 'a', count: 90 + 999, errors: 3, tps: 30, avgMs: 10, maxMs: 50 }]);
});

test('app stats - an app idle for the whole window shows its totals and no rate', () => {
  const t = new AppStatsTable();
  t.merge([{ app: 'old', count: 5, errors: 0, totalMs: 5, maxMs: 1 }], 10_000);
  const snap = t.snapshot(1, 60_000);
  assert.deepEqual(snap.apps, [{ app: 'old', count: 5, errors: 0, tps: 0, avgMs: 0, maxMs: 0 }]);
});

test('app stats - the stats file round-trips; a missing or foreign file reads as undefined', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-stats-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const t = new AppStatsTable();
  t.merge([{ app: 'x', count: 1, errors: 0, totalMs: 3, maxMs: 3 }]);
  const p = join(dir, 'ibas_127.0.0.1-1.stats');
  t.write(p, 7);
  assert.equal(readStatsFile(p)?.apps[0]?.count, 1);
  assert.equal(readStatsFile(join(dir, 'none')), undefined);
  writeFileSync(join(dir, 'bad'), '{"version":2}');
  assert.equal(readStatsFile(join(dir, 'bad')), undefined);
});
