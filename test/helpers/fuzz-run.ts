/**
 * Runs fuzz targets for a number of inputs and reports: how many inputs were accepted, rejected with a coded
 * IbpError, or crashed (anything else thrown, a broken invariant, an uncaught exception or unhandled rejection
 * while the target ran); the slowest input (a hang shows up here: the time of each input is measured and
 * checked against a budget after the fact); and the peak memory. Input `i` of target `t` is built from
 * `rng(mixSeed(seed, t, i))`, so any one of them can be replayed alone (`replay`).
 */
import { IbpError } from '../../src/core/errors.js';
import { isBug, type FuzzTarget } from './fuzz-targets.js';
import { mixSeed, rng } from './mutator.js';

export interface FuzzOptions {
  seed: number;
  /** Inputs for each target, by name. */
  counts: Record<string, number>;
  /** An input slower than this counts as over budget (default 1000 ms). */
  budgetMs?: number;
  /** Crashes kept with their input (default 20). */
  keepCrashes?: number;
  /** Called now and then with the inputs done so far. */
  onProgress?: (done: number, target: string) => void;
}

export interface TargetReport {
  inputs: number;
  accepted: number;
  rejected: number;
  crashes: number;
  overBudget: number;
  maxMs: number;
  totalMs: number;
}

export interface CrashRecord {
  target: string;
  index: number;
  error: string;
  inputHex: string;
}

export interface FuzzReport {
  seed: number;
  inputs: number;
  crashes: number;
  overBudget: number;
  maxInputMs: number;
  slowest: { target: string; index: number } | undefined;
  peakRssMb: number;
  peakHeapMb: number;
  seconds: number;
  targets: Record<string, TargetReport>;
  crashList: CrashRecord[];
}

const MB = 1024 * 1024;

/** Input `index` of target number `targetIndex` (its position in the full target list). */
export function fuzzInput(seed: number, targetIndex: number, index: number): { r: () => number } {
  return { r: rng(mixSeed(seed, targetIndex, index)) };
}

export async function runFuzz(all: readonly FuzzTarget[], o: FuzzOptions): Promise<FuzzReport> {
  const budget = o.budgetMs ?? 1000;
  const keep = o.keepCrashes ?? 20;
  const t0 = performance.now();
  const report: FuzzReport = {
    seed: o.seed, inputs: 0, crashes: 0, overBudget: 0, maxInputMs: 0, slowest: undefined,
    peakRssMb: 0, peakHeapMb: 0, seconds: 0, targets: {}, crashList: [],
  };
  const sample = (): void => {
    const m = process.memoryUsage();
    report.peakRssMb = Math.max(report.peakRssMb, m.rss / MB);
    report.peakHeapMb = Math.max(report.peakHeapMb, m.heapUsed / MB);
  };
  let current = '(none)';
  const crash = (target: string, index: number, err: unknown, input: Buffer | undefined): void => {
    report.crashes++;
    if (report.targets[target]) report.targets[target].crashes++;
    if (report.crashList.length < keep) {
      const error = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err);
      report.crashList.push({ target, index, error, inputHex: input ? input.subarray(0, 512).toString('hex') : '' });
    }
  };
  const onUncaught = (err: unknown): void => crash(current, -1, err, undefined);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  try {
    for (const [ti, t] of all.entries()) {
      const n = o.counts[t.name] ?? 0;
      if (n <= 0) continue;
      current = t.name;
      const tr: TargetReport = { inputs: 0, accepted: 0, rejected: 0, crashes: 0, overBudget: 0, maxMs: 0, totalMs: 0 };
      report.targets[t.name] = tr;
      await t.setup?.();
      const one = async (i: number): Promise<void> => {
        const { r } = fuzzInput(o.seed, ti, i);
        let input: Buffer | undefined;
        const start = performance.now();
        try {
          input = t.input(r);
          const p = t.run(input, r);
          if (p) await p;
          tr.accepted++;
        } catch (err) {
          if (err instanceof IbpError && !isBug(err)) tr.rejected++;
          else crash(t.name, i, err, input);
        }
        const ms = performance.now() - start;
        tr.inputs++;
        report.inputs++;
        tr.totalMs += ms;
        if (ms > tr.maxMs) tr.maxMs = ms;
        if (ms > report.maxInputMs) {
          report.maxInputMs = ms;
          report.slowest = { target: t.name, index: i };
        }
        if (ms > budget) {
          tr.overBudget++;
          report.overBudget++;
        }
        if ((report.inputs & 1023) === 0) {
          sample();
          o.onProgress?.(report.inputs, t.name);
        }
      };
      try {
        if (!t.parallel || t.parallel <= 1) {
          for (let i = 0; i < n; i++) await one(i);
        } else {
          let next = 0;
          await Promise.all(Array.from({ length: Math.min(t.parallel, n) }, async () => {
            while (next < n) await one(next++);
          }));
        }
      } finally {
        await t.teardown?.();
        sample();
      }
    }
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** Splits `total` inputs over the targets by weight (every target with a weight gets at least one). */
export function splitCount(total: number, weights: Record<string, number>): Record<string, number> {
  const names = Object.keys(weights).filter((k) => weights[k]! > 0);
  const sum = names.reduce((s, k) => s + weights[k]!, 0);
  const out: Record<string, number> = {};
  let given = 0;
  for (const k of names) {
    out[k] = Math.max(1, Math.floor((total * weights[k]!) / sum));
    given += out[k];
  }
  const first = names[0];
  if (first !== undefined) out[first] = out[first]! + Math.max(0, total - given);
  return out;
}
