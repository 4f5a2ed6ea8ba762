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

/** The master's 'dynamic pool grows|shrinks' decisions (monitor log): when, and how many workers each forked or retired. */
function poolDecisions(c: TestCluster, what: 'grows' | 'shrinks'): Array<{ t: number; count: number }> {
  const text = readFileSync(join(c.serverHomes[0]!, 'log', `ibas_127.0.0.1-${c.ports[0]}_monitor.log`), 'utf8');
  const out: Array<{ t: number; count: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.includes(`dynamic pool ${what}`)) continue;
    const rec = JSON.parse(line) as { time: number | string; create?: number; destroy?: number };
    out.push({ t: typeof rec.time === 'number' ? rec.time : Date.parse(rec.time), count: (what === 'grows' ? rec.create : rec.destroy) ?? 0 });
  }
  return out;
}

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
    // Growth and shrinking are judged by the master's decisions (its monitor log), not by sampling the board: the
    // workers one cycle forks or retires write their own state, and on a loaded machine those writes can land a
    // third of a cycle apart.
    const grows = poolDecisions(c, 'grows').filter((d) => d.t <= loadEnded);
    assert.equal(grows.reduce((a, d) => a + d.count, 0), 4, `forked 4 workers in all (1 to 5): ${JSON.stringify(grows)}\n${monitorLog(c)}`);
    assert.ok(grows.every((d) => d.count >= 1 && d.count <= 2), `at most create_interval (2) per cycle: ${JSON.stringify(grows)}`);
    assert.ok(grows.length >= 2, `over at least two cycles: ${JSON.stringify(grows)}`);
    for (let i = 1; i < grows.length; i++) {
      assert.ok(grows[i]!.t - grows[i - 1]!.t >= CYCLE_MS * 0.6, `growth decisions one cycle apart: ${JSON.stringify(grows)}`);
    }
    const shrinks = poolDecisions(c, 'shrinks').filter((d) => d.t >= loadEnded - CYCLE_MS);
    assert.equal(shrinks.reduce((a, d) => a + d.count, 0), 4, `retired 4 workers in all (5 to 1): ${JSON.stringify(shrinks)}`);
    assert.ok(shrinks.every((d) => d.count >= 1 && d.count <= 2), `at most destroy_interval (2) per cycle: ${JSON.stringify(shrinks)}`);
    assert.ok(shrinks.length >= 2, `over at least two cycles: ${JSON.stringify(shrinks)}`);
    for (let i = 1; i < shrinks.length; i++) {
      assert.ok(shrinks[i]!.t - shrinks[i - 1]!.t >= CYCLE_MS * 0.6, `decisions one cycle apart: ${JSON.stringify(shrinks)}`);
    }
    assert.ok(!rec.samples.some((s, i) => s.t > loadEnded + CYCLE_MS && i > 0 && s.size > rec.samples[i - 1]!.size && s.t < settled), 'no growth while idle');
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
