import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, type IbacConnection, type IbpError } from '../../../src/client/index.js';
import { cliPath } from '../../../src/cli/scratch-cluster.js';
import {
  ibasMasterStatus,
  instanceName,
  isProcessAlive,
  pidPathOf,
  readUpgradeStatus,
  runningPid,
  servingGenerationPid,
  upgradeStatusPathOf,
  type UpgradeStatus,
} from '../../../src/platform/index.js';
import { startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ibas` without blocking this process's event loop (the load loops keep running meanwhile). */
function ibas(home: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath('ibas'), ...args], { env: { ...process.env, ...env, IBP_HOME: home }, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const alive = (pid: number | undefined): boolean => pid !== undefined && isProcessAlive(pid);

/** Continuous load: long-connection loops and short-connection loops calling ibp_t_pid until stopped. */
function startLoad(env: IbacEnv, node: string, long: number, short: number) {
  const failures: string[] = [];
  const workerPids = new Set<number>();
  const state = { completed: 0, stop: false };
  const record = async (call: () => Promise<{ pid: number }>): Promise<void> => {
    try {
      workerPids.add((await call()).pid);
      state.completed++;
    } catch (err) {
      failures.push(`${(err as IbpError).code}/${(err as IbpError).commStatus}: ${(err as Error).message}`);
    }
  };
  const conns: Promise<IbacConnection>[] = Array.from({ length: long }, () => env.connect(node));
  const loops = [
    ...conns.map(async (p) => {
      const conn = await p;
      while (!state.stop) await record(async () => (await conn.call('ibp_t_pid', 'long')).json<{ pid: number }>());
      await conn.close();
    }),
    ...Array.from({ length: short }, async () => {
      while (!state.stop) await record(async () => (await env.call('ibp_t_pid', 'short')).json<{ pid: number }>());
    }),
  ];
  return {
    failures,
    workerPids,
    get completed() {
      return state.completed;
    },
    /** Resolves once `n` more calls have completed (or any failed). */
    async more(n: number, what: string): Promise<void> {
      const target = state.completed + n;
      await waitFor(() => state.completed >= target || failures.length > 0, what, 60_000);
    },
    async stop(): Promise<void> {
      state.stop = true;
      await Promise.all(loops);
    },
  };
}

/** SIGUSR2 to `pid` (the master, or a generation, which passes it on); resolves with the outcome the master records. */
async function signalUpgrade(pid: number, masterPid: number, statusPath: string): Promise<UpgradeStatus> {
  const sentAt = Date.now();
  process.kill(pid, 'SIGUSR2');
  let st: UpgradeStatus | undefined;
  await waitFor(() => {
    st = readUpgradeStatus(statusPath);
    return st !== undefined && st.masterPid === masterPid && st.atMs >= sentAt && st.state !== 'starting';
  }, 'the outcome of the upgrade', 60_000);
  return st!;
}

/** The pid of the generation serving now, from the master's status. */
async function generationPid(pidPath: string): Promise<number | undefined> {
  return servingGenerationPid(await ibasMasterStatus({ pidPath }));
}

describe('zero-downtime platform upgrade (SIGUSR2: the master\'s soft restart)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanups.reverse()) await f();
  });

  /** A cluster whose platform runs as a daemon (`ibas -a start`), stopped and removed after the tests. */
  async function daemonCluster(env: NodeJS.ProcessEnv = {}): Promise<{ c: TestCluster; home: string; pidPath: string }> {
    const c = await startTestCluster({ workers: 2, start: false });
    const home = c.serverHomes[0]!;
    const pidPath = pidPathOf(home, '127.0.0.1', c.ports[0]!);
    cleanups.push(async () => {
      await ibas(home, {}, '-a', 'stop');
      // Whatever generation is left (a failed test), with its workers.
      const pid = runningPid(pidPath);
      if (pid !== undefined) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await c.close();
    });
    const start = await ibas(home, env, '-a', 'start');
    assert.equal(start.code, 0, start.stderr);
    return { c, home, pidPath };
  }

  test('3 upgrades in a row under load on long and short connections: no call fails, no connection is refused', async () => {
    const { c, home, pidPath } = await daemonCluster();
    const env = await IbacEnv.create({ home: c.clientHome });
    cleanups.push(() => env.close());
    const load = startLoad(env, c.serverNode, 4, 4);
    const master = runningPid(pidPath)!;
    const generations = [(await generationPid(pidPath))!];
    assert.ok(generations[0], 'the master reports its serving generation');
    try {
      await load.more(50, 'the load to run');
      for (let i = 0; i < 3; i++) {
        const r = await ibas(home, {}, '-a', 'restart_graceful');
        assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
        const m = /restarted gracefully: pid (\d+) → (\d+) \(master pid (\d+)\)/.exec(r.stdout);
        assert.ok(m, r.stdout);
        assert.equal(Number(m[1]), generations.at(-1));
        assert.equal(Number(m[3]), master);
        const next = Number(m[2]);
        assert.equal(await generationPid(pidPath), next, 'the master serves with the new generation');
        assert.equal(runningPid(pidPath), master, 'the pid file still names the master, which kept the socket');
        assert.equal(alive(Number(m[1])), false, 'the old generation has exited');
        generations.push(next);
        await load.more(50, `calls served by generation ${i + 2}`);
      }
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, []);
    assert.equal(new Set(generations).size, 4);
    assert.ok(load.workerPids.size >= 8, `4 generations of 2 workers answered (${load.workerPids.size} worker pids)`);
    // The board name shows the newest generation's workers.
    const bb = await ibas(home, {}, '-s', 'bbdetail');
    const rows = bb.stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 2, bb.stdout);
    const status = readUpgradeStatus(upgradeStatusPathOf({ homeRoot: home, instanceName: instanceName('127.0.0.1', c.ports[0]!) }));
    assert.equal(status?.state, 'switched');
    assert.equal(status?.toPid, generations.at(-1));
    assert.equal(status?.masterPid, master);
  });

  test('a new generation that cannot start (bad config, moved address) leaves the old one serving, and says why', async () => {
    const { c, home, pidPath } = await daemonCluster();
    const env = await IbacEnv.create({ home: c.clientHome });
    cleanups.push(() => env.close());
    const confPath = join(home, 'etc', 'ibas.conf');
    const conf = readFileSync(confPath, 'utf8');
    const pid = runningPid(pidPath)!;
    const gen = (await generationPid(pidPath))!;
    const statusPath = upgradeStatusPathOf({ homeRoot: home, instanceName: instanceName('127.0.0.1', c.ports[0]!) });
    const load = startLoad(env, c.serverNode, 2, 2);
    try {
      await load.more(20, 'the load to run');
      // The CLI itself reads the config (to find the instance), so it refuses a broken one before signalling.
      writeFileSync(confPath, conf.replace('"mpm" : {', '"mpm" : { oops'));
      const refused = await ibas(home, {}, '-a', 'restart_graceful');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /IBP_ERR_CONFIG_SYNTAX/);
      // SIGUSR2 straight to the master: it reads the broken config and starts no new generation.
      const bad = await signalUpgrade(pid, pid, statusPath);
      assert.equal(bad.state, 'failed');
      assert.equal(bad.error?.code, 'IBP_ERR_PLATFORM_UPGRADE');
      assert.match(bad.error?.message ?? '', /failed to start: IBP_ERR_CONFIG_SYNTAX/);
      await load.more(20, 'calls after the failed restart');
      writeFileSync(confPath, conf.replace(`"port" : ${c.ports[0]}`, `"port" : ${c.ports[0]! + 1}`));
      // SIGUSR2 to the serving generation (the old ibas's habit): passed on to the master.
      const moved = await signalUpgrade(gen, pid, statusPath);
      assert.equal(moved.state, 'failed');
      assert.match(moved.error?.message ?? '', /a graceful restart keeps the listen address/);
      await load.more(20, 'calls after the second failed restart');
    } finally {
      writeFileSync(confPath, conf);
      await load.stop();
    }
    assert.deepEqual(load.failures, []);
    assert.equal(runningPid(pidPath), pid, 'the master still runs and the pid file names it');
    assert.equal(await generationPid(pidPath), gen, 'the old generation still serves');
    const log = readFileSync(join(home, 'log', `ibas_127.0.0.1-${c.ports[0]}_monitor.log`), 'utf8');
    assert.match(log, /graceful restart failed; this generation keeps serving/);
    // With the config fixed, the same master can still be upgraded.
    const ok = await ibas(home, {}, '-a', 'restart_graceful');
    assert.equal(ok.code, 0, ok.stderr);
    assert.notEqual(await generationPid(pidPath), gen);
    assert.equal((await env.call('ibp_test_echo', 'after')).text(), 'after');
  });

  test('a new generation not ready within the timeout is killed with its workers; the old one keeps serving', async () => {
    // The master reads its ready timeout from its environment: 1 ms is shorter than any start.
    const { c, home, pidPath } = await daemonCluster({ IBP_UPGRADE_READY_TIMEOUT_MS: '1' });
    const env = await IbacEnv.create({ home: c.clientHome });
    cleanups.push(() => env.close());
    const pid = runningPid(pidPath)!;
    const gen = await generationPid(pidPath);
    const r = await ibas(home, {}, '-a', 'restart_graceful');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not ready within 1 ms/);
    const st = readUpgradeStatus(upgradeStatusPathOf({ homeRoot: home, instanceName: instanceName('127.0.0.1', c.ports[0]!) }));
    assert.equal(st?.state, 'failed');
    assert.ok(st?.toPid, 'the new generation was started');
    assert.notEqual(st.toPid, gen);
    await waitFor(() => !alive(st.toPid), 'the timed-out generation to be gone');
    assert.equal(runningPid(pidPath), pid);
    assert.equal(await generationPid(pidPath), gen, 'the old generation still serves');
    assert.equal((await env.call('ibp_test_echo', 'still')).text(), 'still');
  });
});
