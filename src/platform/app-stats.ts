/**
 * Per-app transaction statistics (DESIGN §8: the framework measures every transaction itself). A worker counts
 * its transactions per app (`AppStatsRecorder`) and sends the counts to the master a few times a second; the
 * master adds them up per second (`AppStatsTable`) and writes `run/ibas_<ip>-<port>.stats` about once a second,
 * which `ibp top` reads. The file is JSON (`PlatformStatsFile`), replaced atomically.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic-file.js';

/** One app's counts since the worker's last flush. */
export interface AppStatsDelta {
  app: string;
  count: number;
  errors: number;
  /** Sum of the transactions' latencies, ms (request received → response handed to the protocol). */
  totalMs: number;
  maxMs: number;
}

/** One app in the stats file: totals since the master started, and rates over the last `windowMs`. */
export interface AppStatsRow {
  app: string;
  count: number;
  errors: number;
  tps: number;
  avgMs: number;
  maxMs: number;
}

/** The content of `run/ibas_<ip>-<port>.stats`. */
export interface PlatformStatsFile {
  version: 1;
  masterPid: number;
  writtenAtMs: number;
  /** The window the rates (`tps`, `avgMs`, `maxMs`) are measured over. */
  windowMs: number;
  apps: AppStatsRow[];
}

/** Worker side: counts per app between flushes. */
export class AppStatsRecorder {
  #pending = new Map<string, AppStatsDelta>();

  record(app: string, ms: number, ok: boolean): void {
    let d = this.#pending.get(app);
    if (!d) {
      d = { app, count: 0, errors: 0, totalMs: 0, maxMs: 0 };
      this.#pending.set(app, d);
    }
    d.count++;
    if (!ok) d.errors++;
    d.totalMs += ms;
    if (ms > d.maxMs) d.maxMs = ms;
  }

  /** The counts since the last call, or undefined when there were none. */
  take(): AppStatsDelta[] | undefined {
    if (this.#pending.size === 0) return undefined;
    const out = [...this.#pending.values()];
    this.#pending.clear();
    return out;
  }
}

interface Bucket {
  second: number;
  count: number;
  errors: number;
  totalMs: number;
  maxMs: number;
}

const BUCKETS = 8;
/** Rates are taken over the last WINDOW_SECONDS complete seconds. */
export const STATS_WINDOW_SECONDS = 3;

/** Master side: totals and per-second buckets per app. */
export class AppStatsTable {
  #apps = new Map<string, { count: number; errors: number; buckets: Bucket[] }>();

  merge(deltas: readonly AppStatsDelta[], nowMs: number = Date.now()): void {
    const second = Math.floor(nowMs / 1000);
    for (const d of deltas) {
      if (typeof d?.app !== 'string' || !(d.count > 0)) continue;
      let a = this.#apps.get(d.app);
      if (!a) {
        a = { count: 0, errors: 0, buckets: [] };
        this.#apps.set(d.app, a);
      }
      a.count += d.count;
      a.errors += d.errors;
      let b = a.buckets[a.buckets.length - 1];
      if (!b || b.second !== second) {
        b = { second, count: 0, errors: 0, totalMs: 0, maxMs: 0 };
        a.buckets.push(b);
        if (a.buckets.length > BUCKETS) a.buckets.shift();
      }
      b.count += d.count;
      b.errors += d.errors;
      b.totalMs += d.totalMs;
      if (d.maxMs > b.maxMs) b.maxMs = d.maxMs;
    }
  }

  snapshot(masterPid: number, nowMs: number = Date.now()): PlatformStatsFile {
    const current = Math.floor(nowMs / 1000);
    const from = current - STATS_WINDOW_SECONDS;
    const apps: AppStatsRow[] = [];
    for (const [app, a] of this.#apps) {
      let count = 0;
      let totalMs = 0;
      let maxMs = 0;
      for (const b of a.buckets) {
        if (b.second < from || b.second >= current) continue;
        count += b.count;
        totalMs += b.totalMs;
        if (b.maxMs > maxMs) maxMs = b.maxMs;
      }
      apps.push({
        app,
        count: a.count,
        errors: a.errors,
        tps: round(count / STATS_WINDOW_SECONDS),
        avgMs: count > 0 ? round(totalMs / count) : 0,
        maxMs: round(maxMs),
      });
    }
    apps.sort((x, y) => y.tps - x.tps || y.count - x.count || x.app.localeCompare(y.app));
    return { version: 1, masterPid, writtenAtMs: nowMs, windowMs: STATS_WINDOW_SECONDS * 1000, apps };
  }

  /** Writes the snapshot to `path` (atomic replace). */
  write(path: string, masterPid: number, nowMs: number = Date.now()): void {
    writeFileAtomic(path, `${JSON.stringify(this.snapshot(masterPid, nowMs))}\n`, { sync: false });
  }
}

const round = (n: number): number => Math.round(n * 1000) / 1000;

/** Reads a stats file; undefined when it is missing or not a stats file. */
export function readStatsFile(path: string): PlatformStatsFile | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as PlatformStatsFile;
    return v && v.version === 1 && Array.isArray(v.apps) ? v : undefined;
  } catch {
    return undefined;
  }
}
