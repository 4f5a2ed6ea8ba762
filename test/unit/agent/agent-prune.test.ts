import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AGENT_KEEP_SUPERSEDED,
  AGENT_SUPERSEDED_MIN_AGE_MS,
  INDEX_FILE,
  pruneUnusedSnapshots,
  snapshotFileName,
  writeSnapshot,
} from '../../../src/agent/index.js';
import { sampleData, tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));
function replicaDir(): string {
  const t = tempDir();
  temps.push(t.cleanup);
  return join(t.dir, 'run', 'ibma');
}

const T0 = Date.UTC(2030, 0, 1);
/** Writes versions 1..n, snapshot v written at `times[v-1]` (epoch ms). */
function writeVersions(dir: string, times: number[]): void {
  times.forEach((t, i) => {
    writeSnapshot(dir, sampleData({ minCompressSize: i }));
    utimesSync(join(dir, snapshotFileName(i + 1)), new Date(t), new Date(t));
  });
}
const snapshots = (dir: string): number[] =>
  readdirSync(dir).filter((n) => n.startsWith('snapshot-')).map((n) => Number(/\d+/.exec(n)![0])).sort((a, b) => a - b);

describe('agent snapshot pruning (the "unused" rule)', () => {
  it('agent prune - the defaults are: keep 2 superseded, and any superseded less than 60 s ago', () => {
    assert.equal(AGENT_KEEP_SUPERSEDED, 2);
    assert.equal(AGENT_SUPERSEDED_MIN_AGE_MS, 60_000);
  });

  it('agent prune - old superseded snapshots beyond the newest 2 are removed; current and newest 2 superseded stay', () => {
    const dir = replicaDir();
    writeVersions(dir, [T0, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000, T0 + 5000]);
    const removed = pruneUnusedSnapshots(dir, { now: T0 + 10 * 60_000 });
    assert.deepEqual(removed.sort(), [snapshotFileName(1), snapshotFileName(2), snapshotFileName(3)].sort());
    assert.deepEqual(snapshots(dir), [4, 5, 6]);
  });

  it('agent prune - a snapshot superseded less than 60 s ago is kept even beyond the newest 2', () => {
    const dir = replicaDir();
    // v1 written long ago but superseded (v2 written) at T0; v2, v3 superseded later; v4 current.
    writeVersions(dir, [T0 - 3_600_000, T0, T0 + 1000, T0 + 2000]);
    assert.deepEqual(pruneUnusedSnapshots(dir, { now: T0 + 30_000 }), [], 'v1 was superseded 30 s ago');
    assert.deepEqual(snapshots(dir), [1, 2, 3, 4]);
    assert.deepEqual(pruneUnusedSnapshots(dir, { now: T0 + 59_999 }), []);
    assert.deepEqual(pruneUnusedSnapshots(dir, { now: T0 + 60_000 }), [snapshotFileName(1)]);
    assert.deepEqual(snapshots(dir), [2, 3, 4]);
  });

  it('agent prune - a burst of versions never removes one a reader may just have switched from', () => {
    const dir = replicaDir();
    const now = T0 + 1_000_000;
    writeVersions(dir, [now - 500, now - 400, now - 300, now - 200, now - 100, now]); // 6 versions within 1 s
    assert.deepEqual(pruneUnusedSnapshots(dir, { now }), []);
    assert.deepEqual(snapshots(dir), [1, 2, 3, 4, 5, 6]);
  });

  it('agent prune - never removes the current snapshot or a newer one, whatever keep says', () => {
    const dir = replicaDir();
    writeVersions(dir, [T0, T0 + 1, T0 + 2]);
    writeFileSync(join(dir, INDEX_FILE), 'IBPINDEX 1 2 ' + '0'.repeat(8) + '\n'); // corrupt index: nothing pruned
    assert.deepEqual(pruneUnusedSnapshots(dir, { keep: 0, minAgeMs: 0, now: T0 + 1e9 }), []);
    writeSnapshot(dir, sampleData()); // v4, index fixed
    utimesSync(join(dir, snapshotFileName(4)), new Date(T0 + 3), new Date(T0 + 3));
    assert.deepEqual(pruneUnusedSnapshots(dir, { keep: 0, minAgeMs: 0, now: T0 + 1e9 }).sort(), [1, 2, 3].map(snapshotFileName).sort());
    assert.ok(existsSync(join(dir, snapshotFileName(4))));
  });

  it('agent prune - stale temporary files of a crashed writer are removed, fresh ones kept', () => {
    const dir = replicaDir();
    writeVersions(dir, [T0]);
    const stale = join(dir, '.snapshot-9.json.123.abcd.tmp');
    const fresh = join(dir, '.index.456.ef01.tmp');
    writeFileSync(stale, 'x');
    writeFileSync(fresh, 'y');
    utimesSync(stale, new Date(T0 - 11 * 60_000), new Date(T0 - 11 * 60_000));
    utimesSync(fresh, new Date(T0), new Date(T0));
    assert.deepEqual(pruneUnusedSnapshots(dir, { now: T0 }), ['.snapshot-9.json.123.abcd.tmp']);
    assert.ok(existsSync(fresh));
  });

  it('agent prune - without an index nothing is removed', () => {
    const dir = replicaDir();
    assert.deepEqual(pruneUnusedSnapshots(dir), []);
  });
});
