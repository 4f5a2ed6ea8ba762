/**
 * The read side of the local config replica, used by the client library and the server platform.
 * It holds the current snapshot in memory; `refresh()` is the cheap idle-time check that switches to a
 * newer one (the original's `IBMACheckConfigSpaceAttaching`). No read takes a lock or talks to a daemon.
 */
import { statSync, type BigIntStats } from 'node:fs';
import { join, resolve } from 'node:path';
import { IbpError, toIbpError } from '../core/errors.js';
import { ConfigSnapshot } from './config-snapshot.js';
import { INDEX_FILE } from './snapshot-format.js';
import { readIndexVersion, readSnapshotFile, readCurrentSnapshot } from './snapshot-store.js';

/** Options of {@link ConfigReplica.open}. */
export interface ConfigReplicaOptions {
  /**
   * Called when `refresh()` finds a newer index but cannot load what it names (corrupt or unreadable);
   * the replica keeps its current snapshot and does not retry until the index changes again.
   */
  onError?: (err: IbpError) => void;
}

/** Identity of one version of the index file: a new file (rename) or a rewrite changes at least one. */
interface IndexStamp {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/**
 * A handle on the local config replica of one home.
 * @example
 * const replica = ConfigReplica.open(ibpHome().replica, { onError: (e) => log.warn({ err: e }) });
 * const snap = replica.snapshot;           // hot path: Map lookups only
 * const ecif = snap.node('ECIF');
 * // when idle (between transactions):
 * if (replica.refresh()) log.info({ version: replica.snapshot.version }, 'config switched');
 * replica.close();
 */
export class ConfigReplica {
  #dir: string;
  #indexPath: string;
  #snapshot: ConfigSnapshot;
  #stamp: IndexStamp | undefined;
  #onError: ((err: IbpError) => void) | undefined;
  #closed = false;

  private constructor(dir: string, snapshot: ConfigSnapshot, stamp: IndexStamp | undefined, options: ConfigReplicaOptions) {
    this.#dir = dir;
    this.#indexPath = join(dir, INDEX_FILE);
    this.#snapshot = snapshot;
    this.#stamp = stamp;
    this.#onError = options.onError;
  }

  /**
   * Loads the current snapshot of `replicaDir` (`<home>/run/ibma`).
   * Throws IBP_ERR_REPLICA_NO_SNAPSHOT when there is none, IBP_ERR_REPLICA_CORRUPT when it is unreadable.
   */
  static open(replicaDir: string, options: ConfigReplicaOptions = {}): ConfigReplica {
    const dir = resolve(replicaDir);
    // Stamp first: if the index changes while we load, the next refresh() sees a different stamp.
    const stamp = statIndex(join(dir, INDEX_FILE));
    const record = readCurrentSnapshot(dir);
    return new ConfigReplica(dir, new ConfigSnapshot(record), stamp, options);
  }

  /** The replica directory. */
  get dir(): string {
    return this.#dir;
  }

  /** The snapshot in use. Keep a reference for the length of one transaction so it sees one version. */
  get snapshot(): ConfigSnapshot {
    return this.#snapshot;
  }

  /**
   * Switches to a newer snapshot if the index changed: one `stat` of the index when nothing changed.
   * @returns true when it switched. A bad new snapshot is reported to `onError` and the old one kept.
   */
  refresh(): boolean {
    if (this.#closed) return false;
    const stamp = statIndex(this.#indexPath);
    if (stamp === undefined || (this.#stamp !== undefined && sameStamp(stamp, this.#stamp))) return false;
    this.#stamp = stamp;
    try {
      const version = readIndexVersion(this.#dir);
      if (version === undefined || version === this.#snapshot.version) return false;
      this.#snapshot = new ConfigSnapshot(readSnapshotFile(this.#dir, version));
      return true;
    } catch (err) {
      this.#report(toIbpError(err, 'IBP_ERR_REPLICA_CORRUPT'));
      return false;
    }
  }

  /** Stops refreshing. The last snapshot stays readable. Idempotent. */
  close(): void {
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #report(err: IbpError): void {
    if (!this.#onError) return;
    try {
      this.#onError(err);
    } catch {
      /* a throwing callback must not break the caller's idle loop */
    }
  }
}

function statIndex(path: string): IndexStamp | undefined {
  let st: BigIntStats | undefined;
  try {
    st = statSync(path, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (!st) return undefined;
  return { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

function sameStamp(a: IndexStamp, b: IndexStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}
