/**
 * The fuzz harness of `npm run bench:fuzz` in the suite: a short seeded run over every target (decoders,
 * handshake, file frames, IB1, sniffing, the server over an in-memory socket, the IB2 client over loopback),
 * and the harness itself telling a crash, a rejection and a slow input apart.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbpError } from '../../../src/core/errors.js';
import { CONNECTION_TARGETS } from '../../helpers/fuzz-conn-targets.js';
import { runFuzz, splitCount } from '../../helpers/fuzz-run.js';
import { FuzzViolation, SYNC_TARGETS, type FuzzTarget } from '../../helpers/fuzz-targets.js';
import { mutate, rng } from '../../helpers/mutator.js';

describe('fuzz harness', () => {
  it('fuzz - 4000 seeded inputs over every decoder target: no crash, each target both accepts and rejects', async () => {
    const all = [...SYNC_TARGETS, ...CONNECTION_TARGETS];
    const counts = splitCount(4000, { 'ib2-frames': 6, handshake: 4, response: 4, ib1: 4, sniff: 1, 'file-frames': 3, server: 6, client: 2 });
    const report = await runFuzz(all, { seed: 20260101, counts, budgetMs: 10_000 });
    assert.equal(report.inputs, 4000);
    assert.deepEqual(report.crashList, [], 'no crash');
    assert.equal(report.crashes, 0);
    for (const name of ['ib2-frames', 'handshake', 'response', 'ib1', 'file-frames', 'client']) {
      const t = report.targets[name]!;
      assert.ok(t.accepted > 0 && t.rejected > 0, `${name}: ${t.accepted} accepted, ${t.rejected} rejected: the mutations reach both paths`);
    }
    assert.ok(report.targets.server!.accepted === report.targets.server!.inputs, 'the server never lets an error escape');
    assert.ok(report.peakRssMb > 0 && report.maxInputMs > 0);
  });

  it('the same seed gives the same inputs, another seed other inputs', () => {
    const seed = Buffer.from('IB2\x05\x00\x00\x00\x03abc');
    const a = Array.from({ length: 50 }, (_, i) => mutate(rng(i), seed).toString('hex'));
    const b = Array.from({ length: 50 }, (_, i) => mutate(rng(i), seed).toString('hex'));
    const c = Array.from({ length: 50 }, (_, i) => mutate(rng(i + 1000), seed).toString('hex'));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(new Set(a).size > 40, 'mutations vary');
  });

  it('the harness counts a TypeError and a broken invariant as crashes, a coded error as a rejection', async () => {
    let n = 0;
    const buggy: FuzzTarget = {
      name: 'buggy',
      about: 'a target with planted bugs',
      input: (r) => Buffer.from([Math.floor(r() * 256)]),
      run() {
        const k = n++ % 4;
        if (k === 0) throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', 'fine: a rejection');
        if (k === 1) throw new TypeError('planted');
        if (k === 2) throw new FuzzViolation('planted invariant');
        return Promise.reject(new IbpError('IBP_ERR_INTERNAL', 'planted', { cause: new RangeError('wrapped bug') }));
      },
    };
    const report = await runFuzz([buggy], { seed: 1, counts: { buggy: 8 }, budgetMs: 1000 });
    assert.equal(report.targets.buggy!.rejected, 2);
    assert.equal(report.crashes, 6, 'two TypeErrors, two violations, two INTERNALs wrapping a RangeError');
    assert.ok(report.crashList.some((c) => c.error.includes('planted invariant')));
  });

  it('an input slower than the budget is counted and named as the slowest', async () => {
    const slow: FuzzTarget = {
      name: 'slow',
      about: 'one slow input',
      input: () => Buffer.alloc(1),
      run: (_b, r) => (r() < 2 ? new Promise<void>((resolve) => setTimeout(resolve, 30)) : undefined),
    };
    const report = await runFuzz([slow], { seed: 1, counts: { slow: 2 }, budgetMs: 10 });
    assert.equal(report.overBudget, 2);
    assert.ok(report.maxInputMs >= 25);
    assert.equal(report.slowest?.target, 'slow');
  });
});
