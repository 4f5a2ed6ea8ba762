/**
 * The app packages in the registry's `so/`: sha256 and size of `so/<bin>`, cached by the file's stat
 * (size, inode, mtime, ctime) so that an unchanged file is hashed once.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What a package is now. */
export interface PackageState {
  sha256: string;
  size: number;
}

interface Cached extends PackageState {
  stat: string;
}

/** True for a bin name that stays inside so/ (a plain file name). */
export function isPlainFileName(bin: string): boolean {
  return bin.length > 0 && bin !== '.' && bin !== '..' && !/[/\\\0]/.test(bin);
}

export class PackageCache {
  readonly #dir: string;
  #cache = new Map<string, Cached>();

  constructor(soDir: string) {
    this.#dir = soDir;
  }

  /**
   * The package `so/<bin>` as it is now (stat; hashed again only when the stat changed), or undefined
   * when there is no such regular file or `bin` is not a plain file name.
   */
  get(bin: string): PackageState | undefined {
    if (!isPlainFileName(bin)) return undefined;
    const path = join(this.#dir, bin);
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    if (st === undefined || !st.isFile()) {
      this.#cache.delete(bin);
      return undefined;
    }
    const stat = `${st.size} ${st.ino} ${st.mtimeNs} ${st.ctimeNs}`;
    const hit = this.#cache.get(bin);
    if (hit !== undefined && hit.stat === stat) return hit;
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      this.#cache.delete(bin);
      return undefined;
    }
    const entry: Cached = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, stat };
    this.#cache.set(bin, entry);
    return entry;
  }

  /**
   * A lookup for one distribute: lists so/ once (a bin not listed is missing without a stat) and stats each
   * listed bin at most once.
   */
  memo(): (bin: string) => PackageState | undefined {
    const seen = new Map<string, PackageState | undefined>();
    let listed: Set<string> | undefined;
    try {
      listed = new Set(readdirSync(this.#dir));
    } catch {
      listed = new Set();
    }
    return (bin) => {
      if (!listed.has(bin)) return undefined;
      if (seen.has(bin)) return seen.get(bin);
      const v = this.get(bin);
      seen.set(bin, v);
      return v;
    };
  }
}
