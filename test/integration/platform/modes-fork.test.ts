import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { boardOf, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const liveWorkers = (c: TestCluster) => boardOf(c).slots.filter((s) => s.state !== 'empty');

describe('FORK mode: a fresh worker per connection', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ workers: 3, mode: 'FORK' });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('no worker waits before a connection comes', () => {
    assert.deepEqual(liveWorkers(c), []);
  });

  test('each short connection runs in a different worker, which is gone after it', async () => {
    const pids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await env.call('ibp_t_pid', `${i}`);
      const pid = r.json<{ pid: number }>().pid;
      pids.push(pid);
      await waitFor(() => !isAlive(pid), `worker ${pid} to exit after its connection closed`);
    }
    assert.equal(new Set(pids).size, 4, `pids ${pids.join(',')}`);
    await waitFor(() => liveWorkers(c).length === 0, 'the board to show no worker');
  });

  test('a long connection keeps its one worker for every call; the worker exits when it closes', async () => {
    const conn = await env.connect('ECIF');
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) pids.add((await conn.call('ibp_t_pid', `${i}`)).json<{ pid: number }>().pid);
    assert.equal(pids.size, 1);
    const [pid] = [...pids] as [number];
    assert.ok(isAlive(pid), 'the worker lives while its connection is open');
    assert.equal(liveWorkers(c).length, 1);
    await conn.close();
    await waitFor(() => !isAlive(pid), 'the worker to exit after the connection closed');
    await waitFor(() => liveWorkers(c).length === 0, 'the board to show no worker');
  });

  test('at most max_count workers at once; the other connections wait their turn and are served', async () => {
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, liveWorkers(c).filter((s) => s.state !== 'retiring').length);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const t0 = Date.now();
    const calls = await Promise.all(Array.from({ length: 6 }, () => env.call('ibp_t_slow', '300')));
    const took = Date.now() - t0;
    sampling = false;
    await sampler;
    for (const r of calls) assert.equal(r.text(), 'done 300');
    assert.ok(most >= 1 && most <= 3, `at most 3 workers at once, saw ${most}`);
    assert.ok(took >= 600, `6 calls of 300 ms on at most 3 workers take 600 ms or more (took ${took} ms)`);
    await waitFor(() => liveWorkers(c).length === 0, 'every forked worker to exit');
  });

  test('timeouts still hold: a looping worker is killed at T and the call is in doubt', async () => {
    const t0 = Date.now();
    const err = await env.call('ibp_t_loop', 'x').catch((e: unknown) => e);
    const took = Date.now() - t0;
    assert.ok(err instanceof IbpError);
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.ok(took >= 900 && took < 5000, `killed after ${took} ms (T = 1 s)`);
    await waitFor(() => liveWorkers(c).length === 0, 'no worker left');
    assert.equal((await env.call('ibp_test_echo', 'after')).text(), 'after');
  });
});
