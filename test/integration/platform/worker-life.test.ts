import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { REPO_ROOT } from '../../../src/cli/scratch-cluster.js';
import { ibasMasterStatus, pidPathOf, servingGenerationPid } from '../../../src/platform/index.js';
import { FIXTURE_APPS, boardOf, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const fixture = (app: string, timeout: number, timeout2 = 0) => ({ app, source: join(REPO_ROOT, 'test', 'fixtures', 'apps', `${app}.mjs`), timeout, timeout2 });
const APPS = [
  ...FIXTURE_APPS,
  fixture('ibp_t_hang', 10, 1),
  fixture('ibp_t_noterm', 10, 1),
  fixture('ibp_t_stop', 10, 1),
  fixture('ibp_t_uncaught', 30),
];

/** Pids of the pool's workers once it is whole again: 2 idle workers and nothing else on the board. */
async function wholePool(c: TestCluster): Promise<number[]> {
  let pids: number[] = [];
  await waitFor(() => {
    const live = boardOf(c).slots.filter((s) => s.state !== 'empty');
    pids = live.map((s) => s.pid);
    return live.length === 2 && live.every((s) => s.state === 'idle');
  }, 'the pool to be whole again (2 idle workers)', 15_000);
  return pids;
}

/** Calls `app` and returns the failure and how long it took. */
async function failing(env: IbacEnv, app: string, body = 'x'): Promise<{ err: IbpError; ms: number }> {
  const t0 = Date.now();
  const err = await env.call(app, body).then(
    () => assert.fail(`${app} should fail`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof IbpError, String(err));
  return { err, ms: Date.now() - t0 };
}

function logText(c: TestCluster, pattern: RegExp): string {
  const dir = join(c.serverHomes[0]!, 'log');
  return readdirSync(dir)
    .filter((f) => pattern.test(f))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

describe('worker life: kills, timeouts and escaped errors', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ workers: 2, apps: APPS });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('a worker killed with SIGKILL mid-transaction: the call is in doubt and the pool is whole again', async () => {
    const before = await wholePool(c);
    const pending = env.call('ibp_t_slow', '5000').catch((e: unknown) => e);
    let pid = 0;
    await waitFor(() => {
      pid = boardOf(c).slots.find((s) => s.state === 'busy')?.pid ?? 0;
      return pid > 0;
    }, 'a worker to be busy');
    process.kill(pid, 'SIGKILL');
    const err = await pending;
    assert.ok(err instanceof IbpError);
    assert.equal(err.commStatus, 'ON_SENDING', `${err.code}: ${err.message}`);
    const after = await wholePool(c);
    assert.ok(!after.includes(pid), 'the killed worker was replaced');
    assert.equal(after.filter((p) => before.includes(p)).length, 1, 'the other worker kept running');
  });

  test('a connection handed to a worker that dies before taking it goes to another worker: the call succeeds', async () => {
    const pids = await wholePool(c);
    // The pool (the process that accepts and hands connections over) is the generation under the master.
    const masterPid = servingGenerationPid(await ibasMasterStatus({ pidPath: pidPathOf(c.serverHomes[0]!, '127.0.0.1', c.ports[0]!) }))!;
    const socketFds = (): number => {
      let n = 0;
      for (const fd of readdirSync(`/proc/${masterPid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${masterPid}/fd/${fd}`).startsWith('socket:')) n++;
        } catch {
          /* closed meanwhile */
        }
      }
      return n;
    };
    const baseline = socketFds();
    // Stopped workers still look idle on the board, so the master hands them the connection; they never take it.
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    const t0 = Date.now();
    const call = env.call('ibp_test_echo', 'rescued', { timeoutSec: 20 });
    try {
      await waitFor(() => socketFds() > baseline, 'the master to accept the connection');
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    }
    assert.equal((await call).text(), 'rescued');
    assert.ok(Date.now() - t0 < 15_000);
    assert.match(logText(c, /_monitor\.log$/), /worker died before taking connections handed to it/);
    await wholePool(c);
  });

  test('a transaction that never settles: the watchdog ends its worker at T; in doubt; replaced', async () => {
    const { err, ms } = await failing(env, 'ibp_t_hang');
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.ok(ms >= 900 && ms < 4000, `gone after ${ms} ms (T = 1 s, the master's SIGKILL at 2T)`);
    await wholePool(c);
  });

  test('a worker that ignores SIGTERM is gone within the window all the same', async () => {
    const { err, ms } = await failing(env, 'ibp_t_noterm');
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.ok(ms >= 900 && ms < 4000, `gone after ${ms} ms (T = 1 s)`);
    await wholePool(c);
  });

  test('a stopped worker (watchdog stopped too, SIGTERM left pending) is killed by the master at 2T', async () => {
    const { err, ms } = await failing(env, 'ibp_t_stop');
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.ok(ms >= 1900 && ms < 6000, `gone after ${ms} ms (2T = 2 s)`);
    const monitor = logText(c, /_monitor\.log$/);
    assert.match(monitor, /past 1\.5T: SIGTERM/);
    assert.match(monitor, /past 2T: SIGKILL/);
    await wholePool(c);
  });

  for (const [how, what, message] of [
    ['throw', 'uncaught exception', 'uncaught in ibp_t_uncaught timer'],
    ['reject', 'unhandled rejection', 'lost rejection in ibp_t_uncaught'],
  ] as const) {
    test(`an ${what} in app code: an error answer (not in doubt), the stack in the worker log, the worker replaced`, async () => {
      const before = await wholePool(c);
      const { err } = await failing(env, 'ibp_t_uncaught', how);
      assert.equal(err.code, 'IBP_ERR_SERVER_APP_FAILED');
      assert.equal(err.commStatus, 'COMPLETED', 'the server answered: not in doubt');
      assert.match(err.message, new RegExp(message));
      const after = await wholePool(c);
      assert.equal(after.filter((p) => before.includes(p)).length, 1, 'one worker was replaced');
      const workerLog = logText(c, /_worker_\d+\.log$/);
      const line = workerLog.split('\n').find((l) => l.includes(`${what} in worker`) && l.includes(message));
      assert.ok(line, `the worker log has the ${what}`);
      assert.match(JSON.parse(line).err.stack as string, /ibp_t_uncaught\.mjs/, 'with its stack trace');
    });
  }
});
