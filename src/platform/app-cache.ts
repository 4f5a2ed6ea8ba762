/**
 * The app package cache (the original's .so handle cache, feature #56): loaded ES-module packages keyed by
 * path, at most `max_so_cache_count`, least recently used evicted. A package is re-imported when its file
 * changed (one stat per transaction: mtime, size, inode), so new code answers from the next transaction on.
 */
import { statSync, type Stats } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { LRUCache } from 'lru-cache';
import { IbpError } from '../core/errors.js';
import type { AppEntry } from '../app/context.js';

interface CachedPackage {
  stamp: string;
  entry: AppEntry;
}

export class AppPackageCache {
  #cache: LRUCache<string, CachedPackage>;

  constructor(maxCount: number) {
    this.#cache = new LRUCache({ max: Math.max(1, maxCount) });
  }

  get size(): number {
    return this.#cache.size;
  }

  /** The entry function of the package at `path`, loading or reloading it as needed. */
  async entryOf(path: string, app: string): Promise<AppEntry> {
    let st: Stats;
    try {
      st = statSync(path);
    } catch (err) {
      this.#cache.delete(path);
      throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${path} is missing`, { cause: err });
    }
    const stamp = `${st.mtimeMs}-${st.size}-${st.ino}`;
    const hit = this.#cache.get(path);
    if (hit && hit.stamp === stamp) return hit.entry;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(`${pathToFileURL(path).href}?v=${stamp}`)) as Record<string, unknown>;
    } catch (err) {
      this.#cache.delete(path);
      throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${path} failed to load: ${(err as Error)?.message ?? err}`, { cause: err });
    }
    const entry = (typeof mod.default === 'function' ? mod.default : mod.somain) as AppEntry | undefined;
    if (typeof entry !== 'function') {
      throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${path} exports no default function or somain`);
    }
    this.#cache.set(path, { stamp, entry });
    return entry;
  }

  /** Drops a package (the file changed or was deleted). */
  invalidate(path: string): void {
    this.#cache.delete(path);
  }
}
