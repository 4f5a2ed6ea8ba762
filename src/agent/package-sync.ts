/**
 * App packages on an agent's host: `so/<bin>` is compared with the registry's SHA-256 and replaced the
 * original's way, so that a platform never loads a half-written package:
 *
 * 1. the bytes go to a hidden temporary file `so/.<bin>.ibpupd.tmp`, are `fsync`ed, and the file is
 *    renamed to the **update-period file** `so/<bin>.ibpupd` (so that name only ever holds a whole package);
 * 2. the live `so/<bin>` is unlinked;
 * 3. `so/<bin>.ibpupd` is renamed to `so/<bin>`.
 *
 * Between 2 and 3 a platform that finds no `so/<bin>` loads `so/<bin>.ibpupd` instead: either name
 * holds either the old or the new package, whole.
 *
 * Every package the agent installs is recorded in `so/.ibma-installed.json` ({@link InstalledManifest});
 * {@link PackageSync.removeUnlisted} removes such a package once the node's view no longer lists it, and
 * never touches a file the agent did not write. See docs/agent.md.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { syncDir } from '../core/atomic-file.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { InstalledManifest } from './installed-manifest.js';

/** Suffix of the update-period file a platform falls back to while `so/<bin>` is being replaced. */
export const UPDATE_PERIOD_SUFFIX = '.ibpupd';

/** One package of a node's view, as the registry publishes it. */
export interface PackageInfo {
  app: string;
  bin: string;
  sha256: string;
  size: number;
}

/** The update-period file name of package `bin`. */
export function updatePeriodFileName(bin: string): string {
  return `${bin}${UPDATE_PERIOD_SUFFIX}`;
}

/** Throws IBP_ERR_AGENT_PACKAGE unless `bin` is a plain file name that may live in `so/`. */
export function checkPackageName(bin: string): void {
  if (
    typeof bin !== 'string' || bin.length === 0 || bin.length > 255 || bin === '.' || bin === '..' ||
    /[/\\\0]/.test(bin) || bin.startsWith('.') || bin.endsWith(UPDATE_PERIOD_SUFFIX)
  ) {
    throw new IbpError('IBP_ERR_AGENT_PACKAGE', `package name ${JSON.stringify(bin)}: expected a plain file name in so/ (no path, not hidden, not *${UPDATE_PERIOD_SUFFIX})`);
  }
}

/** SHA-256 of bytes, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Replaces (or creates) `so/<bin>` with `bytes` through the update-period file, as described above.
 * Synchronous: nothing else of the agent runs in between. A failure leaves the live file as it was
 * (or, after step 2, the whole new package in `so/<bin>.ibpupd`).
 */
export function installPackage(soDir: string, bin: string, bytes: Uint8Array): void {
  checkPackageName(bin);
  mkdirSync(soDir, { recursive: true });
  const tmp = join(soDir, `.${bin}${UPDATE_PERIOD_SUFFIX}.tmp`);
  const upd = join(soDir, updatePeriodFileName(bin));
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    removeQuietly(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, upd);
  syncDir(soDir);
  finishInstall(soDir, bin);
}

/** Steps 2 and 3: unlink the live package, rename the update-period file to it. */
function finishInstall(soDir: string, bin: string): void {
  removeQuietly(join(soDir, bin));
  renameSync(join(soDir, updatePeriodFileName(bin)), join(soDir, bin));
  syncDir(soDir);
}

/** What one {@link PackageSync.sync} did. */
export interface PackageSyncResult {
  /** Packages written (new or changed). */
  updated: string[];
  /** Packages already up to date. */
  unchanged: string[];
  /** Packages that could not be brought up to date; their live file (if any) is untouched. */
  failed: { bin: string; error: IbpError }[];
}

interface HashCacheEntry {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

/**
 * Keeps the packages of `so/` equal to the registry's. Local hashes are cached by inode, size and times,
 * so an unchanged package is not re-read on every resync.
 */
export class PackageSync {
  readonly #soDir: string;
  readonly #hashes = new Map<string, HashCacheEntry>();
  readonly #installed: InstalledManifest;

  constructor(soDir: string) {
    this.#soDir = soDir;
    this.#installed = new InstalledManifest(soDir);
  }

  /** The packages this agent installed (bin → SHA-256), from `so/.ibma-installed.json`. */
  installed(): ReadonlyMap<string, string> {
    return this.#installed.entries();
  }

  /** The `so/` directory. */
  get soDir(): string {
    return this.#soDir;
  }

  /** SHA-256 of `so/<file>`, or undefined when there is no such file. */
  localSha256(file: string): string | undefined {
    const path = join(this.#soDir, file);
    let st;
    try {
      st = statSync(path);
    } catch {
      this.#hashes.delete(file);
      return undefined;
    }
    const hit = this.#hashes.get(file);
    if (hit && hit.ino === st.ino && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ctimeMs === st.ctimeMs) return hit.sha256;
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      return undefined;
    }
    const sha256 = sha256Hex(bytes);
    this.#hashes.set(file, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, sha256 });
    return sha256;
  }

  /**
   * Brings every package of `packages` up to date: a package whose local SHA-256 differs is fetched with
   * `fetch(bin)`, checked against the view's size and SHA-256, and installed. A leftover complete
   * update-period file (a crash between steps 2 and 3) is finished without a download. One package
   * failing does not stop the others.
   */
  async sync(packages: readonly PackageInfo[], fetch: (bin: string) => Promise<Uint8Array>): Promise<PackageSyncResult> {
    const result: PackageSyncResult = { updated: [], unchanged: [], failed: [] };
    const seen = new Set<string>();
    for (const p of packages) {
      if (seen.has(p.bin)) continue;
      seen.add(p.bin);
      try {
        checkPackageName(p.bin);
        if (this.localSha256(p.bin) === p.sha256) {
          result.unchanged.push(p.bin);
          continue;
        }
        if (this.localSha256(updatePeriodFileName(p.bin)) === p.sha256) {
          finishInstall(this.#soDir, p.bin);
        } else {
          const bytes = await fetch(p.bin);
          const got = sha256Hex(bytes);
          if (bytes.length !== p.size || got !== p.sha256) {
            throw new IbpError(
              'IBP_ERR_AGENT_PACKAGE',
              `package ${p.bin} of app ${p.app}: got ${bytes.length} bytes with SHA-256 ${got}, the view says ${p.size} bytes with ${p.sha256} (changed on the registry since it was published?)`,
              { details: { bin: p.bin, app: p.app } },
            );
          }
          installPackage(this.#soDir, p.bin, bytes);
        }
        this.localSha256(p.bin); // refresh the cache with the new file
        this.#installed.record(p.bin, p.sha256);
        result.updated.push(p.bin);
      } catch (err) {
        result.failed.push({ bin: p.bin, error: toIbpError(err, 'IBP_ERR_AGENT_PACKAGE') });
      }
    }
    return result;
  }

  /**
   * Removes the packages this agent installed that `keep` no longer names (an app removed from the node):
   * `so/<bin>` goes (and a leftover `so/<bin>.ibpupd`) only while it still holds the bytes the agent wrote.
   * A package changed by hand since is left in place and no longer counted as the agent's; a file the agent
   * never installed is never looked at. Failures to unlink are reported, the others still go.
   */
  removeUnlisted(keep: ReadonlySet<string>): { removed: string[]; kept: string[]; failed: { bin: string; error: IbpError }[] } {
    const out = { removed: [] as string[], kept: [] as string[], failed: [] as { bin: string; error: IbpError }[] };
    const forget: string[] = [];
    for (const [bin, sha] of this.#installed.entries()) {
      if (keep.has(bin)) continue;
      try {
        checkPackageName(bin);
      } catch {
        forget.push(bin); // not a name the agent could have written: drop it from the record, touch nothing
        continue;
      }
      try {
        const local = this.localSha256(bin);
        if (local !== undefined && local !== sha) {
          out.kept.push(bin); // replaced by hand: the operator's now
        } else {
          removeQuietly(join(this.#soDir, updatePeriodFileName(bin)));
          if (local !== undefined) unlinkSync(join(this.#soDir, bin));
          this.#hashes.delete(bin);
          out.removed.push(bin);
        }
        forget.push(bin);
      } catch (err) {
        out.failed.push({ bin, error: toIbpError(err, 'IBP_ERR_AGENT_PACKAGE') });
      }
    }
    if (forget.length > 0) {
      this.#installed.forget(forget);
      syncDir(this.#soDir);
    }
    return out;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}
