/**
 * The app package cache (the original's .so handle cache and its inotify watch, features #56, #57): loaded
 * ES-module packages keyed by their live path `so/<bin>`, at most `max_so_cache_count`, least recently used
 * evicted.
 *
 * Hot update. The agent replaces a package in three steps (src/agent/package-sync.ts): it writes the whole new
 * package to the update-period file `so/<bin>.ibpupd`, unlinks `so/<bin>`, and renames the update-period file to
 * `so/<bin>`. The cache watches each package directory (`fs.watch`, inotify on Linux): an event on a package's
 * file drops it (changed, deleted, renamed over), so its next transaction stats and imports it again. A worker
 * that finds `so/<bin>` missing loads `so/<bin>.ibpupd` instead, and an entry loaded from it is checked at every
 * transaction until the live file is back. New code answers from the next transaction on, never mid-call: a
 * transaction resolves its entry function once, before it runs.
 *
 * Why a changed package is seen by the very next transaction: the agent's rename happens before the client sends
 * the request that must see it, so the kernel has queued the inotify event when the request's bytes arrive, and the
 * one poll of the worker's event loop that reports the request also reports the watch. The order of the two within
 * that poll is not fixed (epoll puts a socket it reported before back in its ready list ahead of newer fds), so a
 * cached package is looked up only after one `setImmediate`, once every event of that poll has been handled.
 * Where that does not hold — no watch possible (inotify limit, a file
 * system without notifications; or `IBP_SO_WATCH=0`), or the directory itself replaced — the cache falls back to
 * checking: with no working watch it stats the package at every transaction (one `stat`, as before), and with a
 * watch it still re-stats a package whose last check is older than `revalidateMs` (1 s), which bounds the effect
 * of a lost event.
 *
 * ES module caching: importing the same URL twice returns the first module, so each version is imported under
 * its own URL, `file:///…/so/<bin>?v=<mtime>-<size>-<inode>` (the update-period file likewise). Node never frees a
 * module once imported, so every version a worker loaded stays in its memory until the worker exits: a package
 * replaced N times costs up to N (2N when transactions ran during the update period) copies of its code in each
 * worker that ran it. Worker recycling (`max_process_count`) bounds this; a host that replaces big packages often
 * should keep that count moderate.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { register } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { IbpError } from '../core/errors.js';
import type { AppEntry } from '../app/context.js';

/** Suffix of a package's update-period file (the agent's `UPDATE_PERIOD_SUFFIX`). */
export const UPDATE_PERIOD_SUFFIX = '.ibpupd';
/** With a working watch, a package is still re-stat'ed when its last check is older than this. */
export const DEFAULT_REVALIDATE_MS = 1000;
/** A directory that could not be watched is tried again after this long. */
const WATCH_RETRY_MS = 5000;
/** Stat-and-import rounds before giving up on a package that keeps changing under us. */
const LOAD_ATTEMPTS = 3;

export interface AppPackageCacheOptions {
  /** Watch package directories (default true; `false` = one stat per transaction). */
  watch?: boolean;
  /** See {@link DEFAULT_REVALIDATE_MS}. */
  revalidateMs?: number;
  /** Where watch failures are logged. */
  log?: Logger;
}

interface CachedPackage {
  /** `<mtimeMs>-<size>-<ino>` of the file it was imported from. */
  stamp: string;
  entry: AppEntry;
  /** The module's exports (the 2PC hooks `prepare`/`commit`/`rollback` among them, when it has them). */
  exports: Readonly<Record<string, unknown>>;
  /** The file it was imported from: the live package, or its update-period file. */
  file: string;
  /** `performance.now()` of the last check against the file system. */
  checkedAt: number;
}

interface DirWatch {
  watcher: FSWatcher | undefined;
  /** When watching failed: when to try again (`performance.now()` time). */
  retryAt: number;
}

let hooksRegistered = false;

/** Lets this process import `*.ibpupd` files as ES modules (once; see update-period-hooks.ts). */
function ensureUpdatePeriodHooks(): void {
  if (hooksRegistered) return;
  register(new URL('./update-period-hooks.js', import.meta.url));
  hooksRegistered = true;
}

/** The file to load for the live path: itself, else its update-period file; undefined when neither exists. */
function locate(path: string): { file: string; stamp: string } | undefined {
  // Live, update-period, live again: the agent may rename the one to the other between two stats.
  for (const file of [path, path + UPDATE_PERIOD_SUFFIX, path]) {
    const st = statSync(file, { throwIfNoEntry: false });
    if (st) return { file, stamp: `${st.mtimeMs}-${st.size}-${st.ino}` };
  }
  return undefined;
}

/**
 * Loaded app packages (see the file header).
 * @example
 * const cache = new AppPackageCache(1000);
 * const somain = await cache.entryOf('/home/ibp/so/ibp_test_echo.mjs', 'ibp_test_echo');
 */
export class AppPackageCache {
  #cache: LRUCache<string, CachedPackage>;
  #watch: boolean;
  #revalidateMs: number;
  #log: Logger | undefined;
  #dirs = new Map<string, DirWatch>();
  /** Watch events seen so far (an import that saw one meanwhile re-checks its file next time). */
  #events = 0;
  #closed = false;

  constructor(maxCount: number, options: AppPackageCacheOptions = {}) {
    this.#cache = new LRUCache({ max: Math.max(1, maxCount) });
    this.#watch = options.watch ?? true;
    this.#revalidateMs = options.revalidateMs ?? DEFAULT_REVALIDATE_MS;
    this.#log = options.log;
  }

  /** Packages loaded now. */
  get size(): number {
    return this.#cache.size;
  }

  /** Package directories watched now (0 when watching is off or failed). */
  get watchedDirs(): number {
    let n = 0;
    for (const d of this.#dirs.values()) if (d.watcher) n++;
    return n;
  }

  /** True when the package at `path` is loaded (whatever its version). */
  has(path: string): boolean {
    return this.#cache.has(path);
  }

  /**
   * The entry function of the package whose live file is `path`, loading or reloading it as needed.
   * @throws IbpError `IBP_ERR_SERVER_APP_LOAD` (missing, unreadable, syntax error, no entry function)
   */
  async entryOf(path: string, app: string): Promise<AppEntry> {
    return (await this.#package(path, app)).entry;
  }

  /**
   * The exports of the package whose live file is `path` (the same version `entryOf` returns the entry of).
   * @throws IbpError `IBP_ERR_SERVER_APP_LOAD`
   */
  async exportsOf(path: string, app: string): Promise<Readonly<Record<string, unknown>>> {
    return (await this.#package(path, app)).exports;
  }

  async #package(path: string, app: string): Promise<CachedPackage> {
    if (this.#watched(path)) {
      // Let the event loop finish the I/O events it polled along with this transaction's request: a watch event
      // queued before the request arrived is among them (see the file header).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const hit = this.#cache.get(path);
      if (hit !== undefined && hit.file === path && performance.now() - hit.checkedAt < this.#revalidateMs) return hit;
    }
    return this.#load(path, app);
  }

  async #load(path: string, app: string): Promise<CachedPackage> {
    // Watch first, so that any change after the stat below raises an event.
    this.#ensureWatch(dirname(path));
    let lastErr: unknown;
    for (let attempt = 0; attempt < LOAD_ATTEMPTS; attempt++) {
      const eventsBefore = this.#events;
      let found: { file: string; stamp: string } | undefined;
      try {
        found = locate(path);
      } catch (err) {
        this.#cache.delete(path);
        throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${path} cannot be read: ${(err as Error).message}`, { cause: err });
      }
      if (!found) {
        this.#cache.delete(path);
        throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${path} is missing (and there is no update-period file ${path}${UPDATE_PERIOD_SUFFIX})`);
      }
      const hit = this.#cache.get(path);
      if (hit && hit.stamp === found.stamp) {
        // The same file (a rename keeps mtime, size and inode): no new import.
        hit.file = found.file;
        hit.checkedAt = performance.now();
        return hit;
      }
      let mod: Record<string, unknown>;
      try {
        if (found.file !== path) ensureUpdatePeriodHooks();
        mod = (await import(`${pathToFileURL(found.file).href}?v=${found.stamp}`)) as Record<string, unknown>;
      } catch (err) {
        lastErr = err;
        // Replaced or renamed between the stat and the import (the agent at work): look again.
        const again = locate(path);
        if (again && (again.file !== found.file || again.stamp !== found.stamp)) continue;
        this.#cache.delete(path);
        throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${found.file} failed to load: ${(err as Error)?.message ?? err}`, { cause: err });
      }
      const entry = (typeof mod.default === 'function' ? mod.default : mod.somain) as AppEntry | undefined;
      if (typeof entry !== 'function') {
        this.#cache.delete(path);
        throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${found.file} exports no default function or somain`);
      }
      // An event that came while importing may concern this very file: check it again next time.
      const checkedAt = this.#events === eventsBefore ? performance.now() : -Infinity;
      const loaded: CachedPackage = { stamp: found.stamp, entry, exports: mod, file: found.file, checkedAt };
      this.#cache.set(path, loaded);
      return loaded;
    }
    this.#cache.delete(path);
    throw new IbpError('IBP_ERR_SERVER_APP_LOAD', `app ${app}: package ${path} kept changing while it was loaded`, { cause: lastErr });
  }

  #watched(path: string): boolean {
    return this.#dirs.get(dirname(path))?.watcher !== undefined;
  }

  #ensureWatch(dir: string): void {
    if (!this.#watch || this.#closed) return;
    const d = this.#dirs.get(dir);
    if (d && (d.watcher || performance.now() < d.retryAt)) return;
    try {
      const w = watch(dir, { persistent: false, encoding: 'utf8' }, (_event, name) => this.#onEvent(dir, name));
      w.on('error', (err) => {
        this.#log?.warn({ err, dir }, 'package directory watch failed; checking packages with a stat per transaction');
        w.close();
        this.#dirs.set(dir, { watcher: undefined, retryAt: performance.now() + WATCH_RETRY_MS });
        this.#onEvent(dir, null);
      });
      this.#dirs.set(dir, { watcher: w, retryAt: 0 });
    } catch (err) {
      this.#log?.warn({ err, dir }, 'cannot watch the package directory; checking packages with a stat per transaction');
      this.#dirs.set(dir, { watcher: undefined, retryAt: performance.now() + WATCH_RETRY_MS });
    }
  }

  /** A watch event in `dir`: drops the package of that name and any loaded from that file. */
  #onEvent(dir: string, name: string | null): void {
    this.#events++;
    const drop: string[] = [];
    if (name === null) {
      for (const key of this.#cache.keys()) if (dirname(key) === dir) drop.push(key);
    } else {
      const file = join(dir, name);
      for (const [key, v] of this.#cache.entries()) if (key === file || v.file === file) drop.push(key);
    }
    for (const key of drop) this.#cache.delete(key);
  }

  /** Drops a package (the file changed or was deleted). */
  invalidate(path: string): void {
    this.#cache.delete(path);
  }

  /** Stops watching (the loaded modules stay in memory until the process exits). Idempotent. */
  close(): void {
    this.#closed = true;
    for (const d of this.#dirs.values()) d.watcher?.close();
    this.#dirs.clear();
  }
}
