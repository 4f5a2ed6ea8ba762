import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv } from '../../../src/client/index.js';
import { cliPath } from '../../../src/cli/scratch-cluster.js';
import { boardOf, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const CYCLE_MS = 500;

/** Workers that count for the pool size: starting, idle or busy (not retiring, not gone). */
const poolSize = (c: TestCluster): number => boardOf(c).slots.filter((s) => s.state === 'starting' || s.state === 'idle' || s.state === 'busy').length;

interface Sample {
  t: number;
  size: number;
}

/** Records the pool size every 10 ms until stopped. */
function sampleSizes(c: TestCluster): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      samples.push({ t: Date.now(), size: poolSize(c) });
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    samples,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

/**
 * The sizes the pool settled at, in order, with when each step began. One cycle's workers are forked one after
 * the other, so changes less than a third of a cycle apart are one step.
 */
function steps(samples: Sample[]): Sample[] {
  const out: Sample[] = [];
  let lastChange = -Infinity;
  for (const s of samples) {
    const prev = out[out.length - 1];
    if (prev && prev.size === s.size) continue;
    if (prev && s.t - lastChange < CYCLE_MS / 3 && out.length > 1) prev.size = s.size;
    else out.push({ ...s });
    lastChange = s.t;
  }
  return out;
}

const changesOf = (samples: Sample[]) => samples.filter((s, i) => i === 0 || samples[i - 1]!.size !== s.size);
const monitorLog = (c: TestCluster): string =>
  readFileSync(join(c.serverHomes[0]!, 'log', `ibas_127.0.0.1-${c.ports[0]}_monitor.log`), 'utf8').split('\n').filter((l) => /pool (grows|shrinks)/.test(l)).join('\n');

describe('DYNAMIC_WORKERPOOL: grows with load and shrinks when idle, by the adjustment cycle', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({
      workers: 5,
      mode: 'DYNAMIC_WORKERPOOL',
      dynamic: `"min_idle_count" : 1 , "max_idle_count" : 1 , "create_interval" : 2 , "destroy_interval" : 2 , "adjust_interval" : ${CYCLE_MS / 1000}`,
    });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('the pool starts with min_idle_count workers', () => {
    assert.equal(poolSize(c), 1);
  });

  test('under load it grows by create_interval per cycle up to max_count, then shrinks by destroy_interval to max_idle_count', async () => {
    const rec = sampleSizes(c);
    let loading = true;
    const callers = Array.from({ length: 8 }, async () => {
      let n = 0;
      while (loading) {
        assert.equal((await env.call('ibp_t_slow', '250')).text(), 'done 250');
        n++;
      }
      return n;
    });
    try {
      await waitFor(() => poolSize(c) === 5, 'the pool to reach max_count', 30_000);
      // Keep the load for two more cycles: the pool must not pass max_count.
      const holdUntil = Date.now() + 2 * CYCLE_MS;
      await waitFor(() => Date.now() > holdUntil, 'two more cycles under load', 10_000);
    } finally {
      loading = false;
    }
    const loadEnded = Date.now();
    const served = (await Promise.all(callers)).reduce((a, b) => a + b, 0);
    await waitFor(() => poolSize(c) === 1, 'the pool to shrink back to max_idle_count', 30_000);
    const settled = Date.now();
    await waitFor(() => Date.now() > settled + 3 * CYCLE_MS, 'three more idle cycles', 10_000);
    await rec.stop();

    assert.ok(served > 8, `served ${served} calls`);
    assert.ok(Math.max(...rec.samples.map((s) => s.size)) <= 5, 'never more than max_count workers');
    const grow = steps(rec.samples.filter((s) => s.t <= loadEnded));
    assert.deepEqual(grow.map((s) => s.size), [1, 3, 5], `grew in steps of create_interval (2): ${JSON.stringify(changesOf(rec.samples))}\n${monitorLog(c)}`);
    assert.ok(grow[2]!.t - grow[1]!.t >= CYCLE_MS * 0.6, `steps one cycle apart (${grow[2]!.t - grow[1]!.t} ms)`);
    const shrink = steps(rec.samples.filter((s) => s.t > loadEnded));
    assert.deepEqual(shrink.map((s) => s.size), [5, 3, 1], 'shrank in steps of destroy_interval (2)');
    assert.ok(shrink[2]!.t - shrink[1]!.t >= CYCLE_MS * 0.6, `steps one cycle apart (${shrink[2]!.t - shrink[1]!.t} ms)`);
    assert.ok(rec.samples.filter((s) => s.t > settled).every((s) => s.size === 1), 'never below min_idle_count once idle');
  });

  test('ibas -s bbstat shows the shrunk pool', () => {
    const r = spawnSync(process.execPath, [cliPath('ibas'), '-s', 'bbstat'], { env: { ...process.env, IBP_HOME: c.serverHomes[0]! }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [head, row] = r.stdout.trim().split('\n');
    const cols = head!.trim().split(/\s+/);
    const vals = row!.trim().split(/\s+/);
    assert.equal(vals[cols.indexOf('workers')], '1');
    assert.equal(vals[cols.indexOf('idle')], '1');
  });
});
