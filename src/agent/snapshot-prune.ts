/**
 * The agent's "unused" rule for superseded snapshots (the files' version of the original's "remove config
 * shms no process other than ibma is attached to"). Files cannot tell who reads them, so a superseded
 * snapshot counts as unused only when both hold:
 *
 * - it is not among the newest `keep` (2) superseded snapshots, and
 * - it was superseded at least `minAgeMs` (60 s) ago, i.e. the next newer snapshot file is that old.
 *
 * A reader switches on its idle check: it reads the index, then the snapshot the index names. The age rule
 * keeps a snapshot that was current a moment ago on disk long after any reader could have read the index
 * naming it, so a reader that just switched (or is switching) is never cut off, however fast new versions
 * come. Readers hold the snapshot they loaded in memory, so removing its file later is harmless.
 */
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { IbpError } from '../core/errors.js';
import { SNAPSHOT_FILE_RE } from './snapshot-format.js';
import { STALE_TEMP_MS, readIndexVersion } from './snapshot-store.js';

/** Superseded snapshots the agent always keeps. */
export const AGENT_KEEP_SUPERSEDED = 2;
/** A superseded snapshot is kept at least this long after it was superseded. */
export const AGENT_SUPERSEDED_MIN_AGE_MS = 60_000;

/** Options of {@link pruneUnusedSnapshots}. */
export interface PruneUnusedOptions {
  /** Newest superseded snapshots always kept (default 2). */
  keep?: number;
  /** A superseded snapshot younger than this (since it was superseded) is kept (default 60 s). */
  minAgeMs?: number;
  /** The clock, epoch ms (tests). */
  now?: number;
}

/**
 * Removes the superseded snapshots of `replicaDir` that are unused by the rule above, and temporary files
 * of crashed writers older than 10 minutes. Never removes the current snapshot or a newer one; does
 * nothing without a readable index.
 * @returns the names of the files removed.
 */
export function pruneUnusedSnapshots(replicaDir: string, options: PruneUnusedOptions = {}): string[] {
  const keep = options.keep ?? AGENT_KEEP_SUPERSEDED;
  const minAgeMs = options.minAgeMs ?? AGENT_SUPERSEDED_MIN_AGE_MS;
  if (!Number.isInteger(keep) || keep < 0 || !(minAgeMs >= 0)) {
    throw new IbpError('IBP_ERR_USAGE', `pruneUnusedSnapshots: keep must be an integer >= 0 and minAgeMs >= 0, got ${keep}, ${minAgeMs}`);
  }
  const now = options.now ?? Date.now();
  let current: number | undefined;
  try {
    current = readIndexVersion(replicaDir);
  } catch {
    return []; // a corrupt index: keep everything until a writer replaces it
  }
  if (current === undefined) return [];
  const removed: string[] = [];
  const versions: { name: string; version: number; mtimeMs: number }[] = [];
  for (const name of listDir(replicaDir)) {
    const m = SNAPSHOT_FILE_RE.exec(name);
    if (m) {
      versions.push({ name, version: Number(m[1]), mtimeMs: mtimeOf(join(replicaDir, name)) ?? now });
    } else if (name.startsWith('.') && name.endsWith('.tmp') && (mtimeOf(join(replicaDir, name)) ?? now) < now - STALE_TEMP_MS) {
      if (removeFile(join(replicaDir, name))) removed.push(name);
    }
  }
  versions.sort((a, b) => b.version - a.version); // newest first
  let superseded = 0;
  for (let i = 0; i < versions.length; i++) {
    const v = versions[i]!;
    if (v.version >= current) continue;
    superseded++;
    if (superseded <= keep) continue;
    // Superseded when the next newer snapshot was written: versions[i - 1] exists since current > v.
    const supersededAtMs = versions[i - 1]!.mtimeMs;
    if (now - supersededAtMs < minAgeMs) continue;
    if (removeFile(join(replicaDir, v.name))) removed.push(v.name);
  }
  return removed;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
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
