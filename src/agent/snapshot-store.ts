/**
 * Writing and reading the files of the local config replica directory (`<home>/run/ibma/`).
 * One writer (the agent, or `ibp local-config` when no agent runs) and any number of readers:
 * snapshot files are immutable once the index names them, and the index is replaced by atomic rename.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError } from '../core/errors.js';
import {
  INDEX_FILE,
  REPLICA_FORMAT,
  SNAPSHOT_FILE_RE,
  checkSnapshotData,
  decodeIndex,
  decodeSnapshot,
  encodeIndex,
  encodeSnapshot,
  snapshotFileName,
  type SnapshotData,
  type SnapshotRecord,
} from './snapshot-format.js';

/** Temporary files of crashed writers older than this are removed by {@link pruneSnapshots}. */
export const STALE_TEMP_MS = 10 * 60_000;
const MAX_VERSION_CLAIMS = 1000;

/**
 * Writes `data` as the next snapshot and makes it current: the snapshot file is written and synced first,
 * then the index is switched by atomic rename, so a reader never sees an index naming a partial file.
 * The version is one more than the highest in the directory (index or files), claimed with an exclusive
 * create so two writers never share a number.
 * @returns the new version.
 * @example
 * const v = writeSnapshot(ibpHome().replica, { thisNode: 'ECIF', ... });
 */
export function writeSnapshot(replicaDir: string, data: SnapshotData): number {
  const checked = checkSnapshotData(data);
  mkdirSync(replicaDir, { recursive: true });
  let version = highestVersion(replicaDir) + 1;
  for (let tries = 0; !claimFile(join(replicaDir, snapshotFileName(version))); tries++) {
    if (tries >= MAX_VERSION_CLAIMS) throw new IbpError('IBP_ERR_INTERNAL', `could not claim a snapshot version in ${replicaDir}`);
    version++;
  }
  const path = join(replicaDir, snapshotFileName(version));
  const { createdAtMs, ...rest } = checked;
  const record: SnapshotRecord = { format: REPLICA_FORMAT, version, createdAtMs: createdAtMs ?? Date.now(), ...rest };
  try {
    writeFileAtomic(path, encodeSnapshot(record));
  } catch (err) {
    try { unlinkSync(path); } catch { /* already gone */ }
    throw err;
  }
  writeFileAtomic(join(replicaDir, INDEX_FILE), encodeIndex(version));
  return version;
}

/**
 * Removes snapshot files older than the current one, except the newest `keep` of them, and temporary
 * files that crashed writers left behind. Never removes the current snapshot or a newer one. Readers keep
 * the snapshot they loaded in memory, so removing its file is safe.
 * @returns the names of the files removed.
 */
export function pruneSnapshots(replicaDir: string, keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 0) {
    throw new IbpError('IBP_ERR_USAGE', `pruneSnapshots: keep must be an integer >= 0, got ${keep}`);
  }
  const current = readIndexVersion(replicaDir);
  if (current === undefined) return [];
  const superseded: { name: string; version: number }[] = [];
  const removed: string[] = [];
  const now = Date.now();
  for (const name of listDir(replicaDir)) {
    const m = SNAPSHOT_FILE_RE.exec(name);
    if (m) {
      const version = Number(m[1]);
      if (version < current) superseded.push({ name, version });
    } else if (name.startsWith('.') && name.endsWith('.tmp') && isOlderThan(join(replicaDir, name), now - STALE_TEMP_MS)) {
      if (removeFile(join(replicaDir, name))) removed.push(name);
    }
  }
  superseded.sort((a, b) => b.version - a.version);
  for (const { name } of superseded.slice(keep)) {
    if (removeFile(join(replicaDir, name))) removed.push(name);
  }
  return removed;
}

/**
 * The version the index names, or undefined when there is no index.
 * Throws IBP_ERR_REPLICA_CORRUPT when the index exists but is malformed.
 */
export function readIndexVersion(replicaDir: string): number | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(join(replicaDir, INDEX_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `cannot read ${join(replicaDir, INDEX_FILE)}`, { cause: err });
  }
  return decodeIndex(buf, join(replicaDir, INDEX_FILE));
}

/**
 * Reads and checks snapshot `version`. Throws IBP_ERR_REPLICA_CORRUPT when it is unreadable or bad;
 * a missing file is reported with `details.missing = true` (it may have been pruned meanwhile).
 */
export function readSnapshotFile(replicaDir: string, version: number): SnapshotRecord {
  const path = join(replicaDir, snapshotFileName(version));
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `cannot read ${path}${missing ? ' (missing)' : ''}`, {
      cause: err,
      details: { missing },
    });
  }
  return decodeSnapshot(buf, version, path);
}

/**
 * Reads the current snapshot: the index, then the file it names. When the file vanished between the two
 * reads (a writer switched and pruned meanwhile), the index is read again, a bounded number of times.
 * Throws IBP_ERR_REPLICA_NO_SNAPSHOT when there is no index, IBP_ERR_REPLICA_CORRUPT when unreadable.
 */
export function readCurrentSnapshot(replicaDir: string): SnapshotRecord {
  for (let attempt = 0; ; attempt++) {
    const version = readIndexVersion(replicaDir);
    if (version === undefined) {
      throw new IbpError('IBP_ERR_REPLICA_NO_SNAPSHOT', `${replicaDir} has no config snapshot (run the agent or \`ibp local-config\`)`);
    }
    try {
      return readSnapshotFile(replicaDir, version);
    } catch (err) {
      const missing = err instanceof IbpError && err.details?.missing === true;
      if (!missing || attempt >= 3 || readIndexVersion(replicaDir) === version) throw err;
    }
  }
}

/** Creates `path` exclusively; false when it already exists. */
function claimFile(path: string): boolean {
  try {
    closeSync(openSync(path, 'wx', 0o644));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function highestVersion(replicaDir: string): number {
  let max: number;
  try {
    max = readIndexVersion(replicaDir) ?? 0;
  } catch {
    max = 0; // a corrupt index is replaced by this write
  }
  for (const name of listDir(replicaDir)) {
    const m = SNAPSHOT_FILE_RE.exec(name);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isOlderThan(path: string, cutoffMs: number): boolean {
  try {
    return statSync(path).mtimeMs < cutoffMs;
  } catch {
    return false;
  }
}

function removeFile(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}
