/**
 * The agent's record of the packages it installed itself: `so/.ibma-installed.json`, `{"version":1,
 * "packages":{"<bin>":"<sha256>",…}}`. Only a package named here (and still holding the bytes the agent
 * wrote) is ever removed when its node's view stops listing it; a file an operator put in `so/` by hand is
 * never in the record and is never removed. A missing or unreadable record is an empty one (nothing is
 * removed); it is rewritten atomically on every change. See docs/agent.md "Packages".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';

/** The record's file name inside `so/` (hidden: never a package name, see `checkPackageName`). */
export const INSTALLED_MANIFEST_FILE = '.ibma-installed.json';

/** The packages the agent installed in one `so/`, with the SHA-256 it wrote. */
export class InstalledManifest {
  readonly #path: string;
  #packages: Map<string, string> | undefined;

  constructor(soDir: string) {
    this.#path = join(soDir, INSTALLED_MANIFEST_FILE);
  }

  /** The record's path. */
  get path(): string {
    return this.#path;
  }

  /** Bin → SHA-256 of every package the agent installed and has not removed or given up. */
  entries(): ReadonlyMap<string, string> {
    return this.#load();
  }

  /** Records that the agent installed `bin` with these bytes' SHA-256. */
  record(bin: string, sha256: string): void {
    const m = this.#load();
    if (m.get(bin) === sha256) return;
    m.set(bin, sha256);
    this.#save();
  }

  /** Forgets `bins` (removed, or no longer the agent's: replaced by hand). */
  forget(bins: readonly string[]): void {
    const m = this.#load();
    let changed = false;
    for (const b of bins) changed = m.delete(b) || changed;
    if (changed) this.#save();
  }

  #load(): Map<string, string> {
    if (this.#packages !== undefined) return this.#packages;
    const m = new Map<string, string>();
    try {
      const parsed = JSON.parse(readFileSync(this.#path, 'utf8')) as { packages?: unknown };
      const p = parsed?.packages;
      if (typeof p === 'object' && p !== null && !Array.isArray(p)) {
        for (const [bin, sha] of Object.entries(p)) if (typeof sha === 'string' && /^[0-9a-f]{64}$/.test(sha)) m.set(bin, sha);
      }
    } catch {
      /* no record yet (or unreadable): nothing is known to be the agent's */
    }
    this.#packages = m;
    return m;
  }

  #save(): void {
    const packages = Object.fromEntries([...this.#load()].sort(([a], [b]) => a.localeCompare(b)));
    writeFileAtomic(this.#path, `${JSON.stringify({ version: 1, packages }, null, 1)}\n`);
  }
}
