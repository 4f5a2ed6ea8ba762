/**
 * `npm run bench:fuzz`: seeded fuzzing of every decoder — the IB2 frame decoder and payload decoders, the
 * handshake (PRE_REQUEST / PRE_RESPONSE), RESPONSE / ERROR / FILE_BEGIN payloads, file frames through
 * receiveFiles, IB1, sniffing, the server side of all three protocols (HTTP adapter with node's parser) and
 * the IB2 client — with the mutator of test/helpers/mutator.ts (bit flips, byte inserts/deletes, length-field
 * tampering, splicing valid frames from the test vectors).
 *
 *   node dist/bench/fuzz.js [--count 1000000] [--seed 1] [--targets a,b] [--budget-ms 1000] [--max-rss-mb 1024]
 *   node dist/bench/fuzz.js --replay server:1234 [--seed 1]     # one input again, with its bytes and error
 *
 * Prints one line per target, the crashes (target, input index, error, input bytes), a summary line, and as
 * its last line a JSON object {inputs, crashes, max_input_ms, peak_rss_mb, ...}. Exits 1 on any crash, any
 * input over the time budget, or a peak RSS over the bound.
 */
import { parseArgs } from 'node:util';
import { CONNECTION_TARGETS } from '../test/helpers/fuzz-conn-targets.js';
import { fuzzInput, runFuzz, splitCount } from '../test/helpers/fuzz-run.js';
import { SYNC_TARGETS } from '../test/helpers/fuzz-targets.js';

const ALL = [...SYNC_TARGETS, ...CONNECTION_TARGETS];

/** Share of the inputs per target: the cheap in-memory decoders get most, the loopback client the fewest. */
export const DEFAULT_WEIGHTS: Record<string, number> = {
  'ib2-frames': 30, handshake: 15, response: 12, ib1: 12, sniff: 5, 'file-frames': 10, server: 15, client: 1,
};

function fail(msg: string): never {
  process.stderr.write(`bench:fuzz: ${msg}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '1' },
      targets: { type: 'string' },
      'budget-ms': { type: 'string', default: '1000' },
      'max-rss-mb': { type: 'string', default: '1024' },
      replay: { type: 'string' },
    },
  });
  const count = Number(values.count);
  const seed = Number(values.seed);
  const budgetMs = Number(values['budget-ms']);
  const maxRssMb = Number(values['max-rss-mb']);
  if (!Number.isSafeInteger(count) || count < 1) fail(`--count must be a positive integer, got ${values.count}`);
  if (!Number.isSafeInteger(seed)) fail(`--seed must be an integer, got ${values.seed}`);
  if (!(budgetMs > 0) || !(maxRssMb > 0)) fail('--budget-ms and --max-rss-mb must be > 0');

  if (values.replay !== undefined) {
    const [name, idx] = values.replay.split(':');
    const ti = ALL.findIndex((t) => t.name === name);
    if (ti < 0 || !Number.isSafeInteger(Number(idx))) fail(`--replay wants <target>:<index>, targets: ${ALL.map((t) => t.name).join(', ')}`);
    const t = ALL[ti]!;
    const { r } = fuzzInput(seed, ti, Number(idx));
    await t.setup?.();
    const input = t.input(r);
    console.log(`${t.name} #${idx} (seed ${seed}), ${input.length} bytes:\n${input.toString('hex')}`);
    try {
      await t.run(input, r);
      console.log('accepted');
    } catch (err) {
      console.log('threw:', err);
    } finally {
      await t.teardown?.();
    }
    return;
  }

  const names = values.targets ? values.targets.split(',') : ALL.map((t) => t.name);
  for (const n of names) if (!ALL.some((t) => t.name === n)) fail(`unknown target ${n}; targets: ${ALL.map((t) => t.name).join(', ')}`);
  const weights = Object.fromEntries(names.map((n) => [n, DEFAULT_WEIGHTS[n] ?? 1]));
  const counts = splitCount(count, weights);
  let lastLine = 0;
  const report = await runFuzz(ALL, {
    seed, counts, budgetMs,
    onProgress(done, target) {
      if (process.stderr.isTTY && performance.now() - lastLine > 1000) {
        lastLine = performance.now();
        process.stderr.write(`\r${done}/${count} inputs (${target})   `);
      }
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');

  for (const t of ALL) {
    const tr = report.targets[t.name];
    if (!tr) continue;
    const us = (tr.totalMs * 1000) / Math.max(1, tr.inputs);
    console.log(`${t.name.padEnd(12)} ${String(tr.inputs).padStart(8)} inputs  ${String(tr.accepted).padStart(7)} accepted  ${String(tr.rejected).padStart(8)} rejected  ${tr.crashes} crashes  mean ${us.toFixed(1)} us  max ${tr.maxMs.toFixed(1)} ms  — ${t.about}`);
  }
  for (const c of report.crashList) console.log(`CRASH ${c.target} #${c.index}: ${c.error}\n  input: ${c.inputHex}`);
  const slowest = report.slowest ? ` (${report.slowest.target} #${report.slowest.index})` : '';
  console.log(`seed ${seed}: ${report.inputs} inputs in ${report.seconds.toFixed(1)} s, ${report.crashes} crashes, ${report.overBudget} over the ${budgetMs} ms budget, slowest ${report.maxInputMs.toFixed(1)} ms${slowest}, peak RSS ${report.peakRssMb.toFixed(0)} MB, peak heap ${report.peakHeapMb.toFixed(0)} MB`);
  console.log(JSON.stringify({
    inputs: report.inputs,
    crashes: report.crashes,
    max_input_ms: Number(report.maxInputMs.toFixed(2)),
    peak_rss_mb: Number(report.peakRssMb.toFixed(1)),
    peak_heap_mb: Number(report.peakHeapMb.toFixed(1)),
    over_budget: report.overBudget,
    seed,
    seconds: Number(report.seconds.toFixed(1)),
  }));
  if (report.crashes > 0 || report.overBudget > 0 || report.peakRssMb > maxRssMb) process.exitCode = 1;
}

await main();
