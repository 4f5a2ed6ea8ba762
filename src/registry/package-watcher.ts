/**
 * Immediate mode's watch on the registry's `so/`: file events are collected per name and handed over once
 * the directory has been quiet for `debounceMs` (an `scp` writes a file in many steps). Hidden files and the
 * agent's `.ibpupd` / `.tmp` names are ignored; the store ignores packages no app names.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { IbpLogger } from '../core/log.js';

/** Quiet time before changed names are handed over, ms. */
export const PACKAGE_DEBOUNCE_MS = 300;

/** Watches one directory and reports changed file names in batches. */
export class PackageWatcher {
  readonly #onChange: (bins: string[]) => void;
  readonly #debounceMs: number;
  readonly #pending = new Set<string>();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Starts watching `dir`; a watch that cannot start is logged and the registry runs without it. */
  constructor(dir: string, onChange: (bins: string[]) => void, log: IbpLogger, debounceMs = PACKAGE_DEBOUNCE_MS) {
    this.#onChange = onChange;
    this.#debounceMs = debounceMs;
    try {
      this.#watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (typeof name === 'string') this.#add(name);
      });
      this.#watcher.on('error', (err) => log.error({ err, dir }, 'watch on so/ failed: packages are pushed by update_app + distribute_config only'));
    } catch (err) {
      log.error({ err, dir }, 'cannot watch so/: packages are pushed by update_app + distribute_config only');
    }
  }

  /** Stops watching; pending names are dropped. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#pending.clear();
  }

  #add(name: string): void {
    if (this.#closed || name.startsWith('.') || name.includes('/') || /\.(ibpupd|tmp|swp)$/.test(name)) return;
    this.#pending.add(name);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), this.#debounceMs);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    const bins = [...this.#pending].sort();
    this.#pending.clear();
    this.#onChange(bins);
  }
}
