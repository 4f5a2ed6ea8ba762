import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  INDEX_FILE,
  pruneSnapshots,
  readCurrentSnapshot,
  readIndexVersion,
  snapshotFileName,
  writeSnapshot,
} from '../../../src/agent/index.js';
import { decodeIndex, decodeSnapshot, encodeIndex } from '../../../src/agent/snapshot-format.js';
import { IbpError } from '../../../src/core/errors.js';
import { sampleData, tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));
function replicaDir(): string {
  const t = tempDir();
  temps.push(t.cleanup);
  return join(t.dir, 'run', 'ibma');
}
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof IbpError ? err.code : `not IbpError: ${String(err)}`;
  }
  return undefined;
}

describe('snapshot store', () => {
  it('snapshot store - versions start at 1 and increase; the index names the newest', () => {
    const dir = replicaDir();
    assert.equal(readIndexVersion(dir), undefined);
    assert.equal(writeSnapshot(dir, sampleData()), 1);
    assert.equal(writeSnapshot(dir, sampleData({ minCompressSize: 99 })), 2);
    assert.equal(readIndexVersion(dir), 2);
    const rec = readCurrentSnapshot(dir);
    assert.equal(rec.version, 2);
    assert.equal(rec.minCompressSize, 99);
    assert.ok(existsSync(join(dir, snapshotFileName(1))), 'older snapshot stays until pruned');
  });

  it('snapshot store - round-trips every field, filling createdAtMs and oldKeyExp', () => {
    const dir = replicaDir();
    const before = Date.now();
    writeSnapshot(dir, sampleData());
    const rec = readCurrentSnapshot(dir);
    assert.ok(rec.createdAtMs >= before && rec.createdAtMs <= Date.now());
    const { createdAtMs: _c, version: _v, format: _f, ...rest } = rec;
    const expected = sampleData();
    expected.nodes[0]!.oldKeyExp = '';
    assert.deepEqual(rest, expected);
  });

  it('snapshot store - a version is never reused, even past files the index does not name', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    writeFileSync(join(dir, snapshotFileName(7)), 'left by a crashed writer');
    assert.equal(writeSnapshot(dir, sampleData()), 8);
  });

  it('snapshot store - invalid writer input is rejected before anything is written', () => {
    const dir = replicaDir();
    assert.equal(codeOf(() => writeSnapshot(dir, sampleData({ thisNode: 'NOPE' }))), 'IBP_ERR_CONFIG_INVALID');
    assert.equal(codeOf(() => writeSnapshot(dir, sampleData({ minCompressSize: -1 }))), 'IBP_ERR_CONFIG_INVALID');
    assert.equal(readIndexVersion(dir), undefined);
  });

  it('snapshot store - no index reads as IBP_ERR_REPLICA_NO_SNAPSHOT', () => {
    assert.equal(codeOf(() => readCurrentSnapshot(replicaDir())), 'IBP_ERR_REPLICA_NO_SNAPSHOT');
  });

  it('snapshot store - a torn (truncated) snapshot is detected', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const path = join(dir, snapshotFileName(1));
    truncateSync(path, readFileSync(path).length - 5);
    assert.equal(codeOf(() => readCurrentSnapshot(dir)), 'IBP_ERR_REPLICA_CORRUPT');
  });

  it('snapshot store - one flipped byte in the body fails the checksum', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const path = join(dir, snapshotFileName(1));
    const buf = readFileSync(path);
    const at = buf.indexOf('ecif-key');
    buf[at] = buf[at]! ^ 0x01;
    writeFileSync(path, buf);
    assert.throws(() => readCurrentSnapshot(dir), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REPLICA_CORRUPT' && /checksum/.test(e.message));
  });

  it('snapshot store - a snapshot file under another version name is rejected', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const buf = readFileSync(join(dir, snapshotFileName(1)));
    assert.equal(decodeSnapshot(buf, 1).version, 1);
    assert.throws(() => decodeSnapshot(buf, 2), /expected 2/);
  });

  it('snapshot store - the index carries a checksum', () => {
    assert.equal(decodeIndex(Buffer.from(encodeIndex(42))), 42);
    const bad = encodeIndex(42).replace(' 42 ', ' 43 ');
    assert.equal(codeOf(() => decodeIndex(Buffer.from(bad))), 'IBP_ERR_REPLICA_CORRUPT');
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    writeFileSync(join(dir, INDEX_FILE), 'garbage');
    assert.equal(codeOf(() => readCurrentSnapshot(dir)), 'IBP_ERR_REPLICA_CORRUPT');
  });

  it('snapshot store - prune keeps the current and the newest `keep` superseded snapshots', () => {
    const dir = replicaDir();
    for (let i = 0; i < 5; i++) writeSnapshot(dir, sampleData());
    const removed = pruneSnapshots(dir, 1);
    assert.deepEqual(removed.sort(), [snapshotFileName(1), snapshotFileName(2), snapshotFileName(3)].sort());
    const left = readdirSync(dir).filter((n) => n.startsWith('snapshot-')).sort();
    assert.deepEqual(left, [snapshotFileName(4), snapshotFileName(5)]);
    assert.deepEqual(pruneSnapshots(dir, 0), [snapshotFileName(4)]);
    assert.equal(readCurrentSnapshot(dir).version, 5);
  });

  it('snapshot store - prune never removes a snapshot newer than the index', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    writeSnapshot(dir, sampleData());
    writeFileSync(join(dir, INDEX_FILE), encodeIndex(1)); // as if the writer had not switched yet
    assert.deepEqual(pruneSnapshots(dir, 0), []);
    assert.ok(existsSync(join(dir, snapshotFileName(2))));
  });

  it('snapshot store - prune removes stale temp files of crashed writers but not fresh ones', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const stale = join(dir, '.snapshot-9.json.123.abcd.tmp');
    const fresh = join(dir, '.index.456.ef01.tmp');
    writeFileSync(stale, 'x');
    writeFileSync(fresh, 'x');
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(stale, old, old);
    assert.deepEqual(pruneSnapshots(dir, 0), ['.snapshot-9.json.123.abcd.tmp']);
    assert.ok(existsSync(fresh));
  });
});
