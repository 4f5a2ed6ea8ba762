import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { cliPath } from '../../../src/cli/scratch-cluster.js';
import { startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const ibas = (home: string, ...args: string[]) =>
  spawnSync(process.execPath, [cliPath('ibas'), ...args], { env: { ...process.env, IBP_HOME: home }, encoding: 'utf8' });

describe('platform lifecycle', () => {
  const clusters: TestCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.close();
  });

  test('ibas -a start daemonizes; -s status, bbstat and bbdetail show the pool; -a stop stops it', async () => {
    const c = await startTestCluster({ workers: 2, start: false });
    clusters.push(c);
    const home = c.serverHomes[0]!;
    const start = ibas(home, '-a', 'start');
    assert.equal(start.status, 0, start.stderr);
    assert.match(start.stdout, /started on 127\.0\.0\.1:\d+ \(pid \d+, 2 workers\)/);
    try {
      const again = ibas(home, '-a', 'start');
      assert.equal(again.status, 1);
      assert.match(again.stderr, /IBP_ERR_PLATFORM_ALREADY_RUNNING/);
      const st = ibas(home, '-s', 'status');
      assert.equal(st.status, 0);
      assert.match(st.stdout, /is running .* 2 workers/);
      const env = await IbacEnv.create({ home: c.clientHome });
      await env.call('ibp_test_echo', 'x');
      await env.close();
      const bb = ibas(home, '-s', 'bbstat');
      assert.equal(bb.status, 0);
      const [head, row] = bb.stdout.trim().split('\n');
      assert.match(head!, /workers\s+idle\s+busy/);
      assert.equal(row!.trim().split(/\s+/)[0], '2');
      const detail = ibas(home, '-s', 'bbdetail');
      assert.equal(detail.status, 0);
      const rows = detail.stdout.trim().split('\n').slice(1);
      assert.equal(rows.length, 2);
      const served = rows.reduce((n, r) => n + Number(r.trim().split(/\s+/)[4]), 0);
      assert.ok(served >= 1, 'bbdetail counts the transaction served');
    } finally {
      const stop = ibas(home, '-a', 'stop');
      assert.equal(stop.status, 0, stop.stderr);
    }
    const st = ibas(home, '-s', 'status');
    assert.equal(st.status, 1);
    assert.match(st.stdout, /not running/);
  });

  test('SIGTERM: the master finishes the transaction in flight, then exits', async () => {
    const c = await startTestCluster({ workers: 2 });
    clusters.push(c);
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      const master = c.platforms[0]!;
      const pending = env.call('ibp_t_slow', '400');
      // Wait until the transaction runs (the worker is busy), then ask for a graceful stop.
      const bbBusy = (): boolean => /busy/.test(ibas(c.serverHomes[0]!, '-s', 'bbdetail').stdout);
      const end = Date.now() + 5000;
      while (!bbBusy() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      const exited = new Promise<number | null>((r) => master.once('exit', (code) => r(code)));
      master.kill('SIGTERM');
      const r = await pending;
      assert.equal(r.text(), 'done 400');
      assert.equal(await exited, 0);
      const after = await env.call('ibp_test_echo', 'x').catch((e: unknown) => e);
      assert.ok(after instanceof IbpError);
      assert.equal(after.commStatus, 'NOT_SENT', 'a stopped server refuses connections: safe to retry');
    } finally {
      await env.close();
    }
  });

  test('a worker is recycled after max_process_count transactions; the long connection never sees an error', async () => {
    const c = await startTestCluster({ workers: 2, mpmExtra: '"max_process_count" : 5' });
    clusters.push(c);
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      const conn = await env.connect('ECIF');
      const pids: number[] = [];
      for (let i = 0; i < 23; i++) pids.push((await conn.call('ibp_t_pid', `${i}`)).json<{ pid: number }>().pid);
      await conn.close();
      const distinct = [...new Set(pids)];
      assert.ok(distinct.length >= 4, `23 calls with recycling every 5 used ${distinct.length} workers`);
      // Each worker served at most 5 transactions.
      for (const p of distinct) assert.ok(pids.filter((x) => x === p).length <= 5);
    } finally {
      await env.close();
    }
  });

  test('workers recycled again and again under load on 32 long connections: not one call fails', async () => {
    const c = await startTestCluster({ workers: 2, mpmExtra: '"max_process_count" : 150' });
    clusters.push(c);
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      const conns = await Promise.all(Array.from({ length: 32 }, () => env.connect('ECIF')));
      const failures: string[] = [];
      const pids = new Set<number>();
      await Promise.all(
        conns.map(async (conn, k) => {
          for (let i = 0; i < 40; i++) {
            try {
              const r = await conn.call('ibp_t_pid', `${k}-${i}`);
              pids.add(r.json<{ pid: number }>().pid);
            } catch (err) {
              failures.push(`${(err as IbpError).code}/${(err as IbpError).commStatus}`);
            }
          }
        }),
      );
      await Promise.all(conns.map((x) => x.close()));
      assert.deepEqual(failures, []);
      assert.ok(pids.size >= 8, `1280 calls at 150 per worker ran on ${pids.size} workers`);
    } finally {
      await env.close();
    }
  });

  test('ibas -a init lays out a home whose default configs load', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ibp-init-'));
    after(() => rmSync(tmp, { recursive: true, force: true }));
    const r = spawnSync(process.execPath, [cliPath('ibas'), '-a', 'init', '--ip', '127.0.0.1', '--port', '18123', '--this-node', 'ECIF'], {
      env: { ...process.env, IBP_HOME: join(tmp, 'fresh') },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    for (const d of ['etc', 'log', 'file', 'so', 'keys', 'run']) assert.match(r.stdout, new RegExp(`created .*fresh/${d}\\n`));
    assert.match(r.stdout, /created .*etc\/ibas\.conf/);
    assert.match(r.stdout, /created .*etc\/ibma\.conf/);
    const again = spawnSync(process.execPath, [cliPath('ibas'), '-a', 'init'], { env: { ...process.env, IBP_HOME: join(tmp, 'fresh') }, encoding: 'utf8' });
    assert.equal(again.status, 0);
    assert.match(again.stdout, /already exists/);
    const bad = spawnSync(process.execPath, [cliPath('ibas'), '-a', 'bogus'], { env: { ...process.env, IBP_HOME: join(tmp, 'fresh') }, encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /IBP_ERR_USAGE: unknown action -a bogus/);
  });
});

describe('platform logs', () => {
  test('SIGUSR1 to the master makes the master and every worker reopen their log files', async () => {
    const c = await startTestCluster({ workers: 2 });
    try {
      const logDir = join(c.serverHomes[0]!, 'log');
      const env = await IbacEnv.create({ home: c.clientHome });
      await env.call('ibp_test_echo', 'x');
      const files = readdirSync(logDir).filter((f) => /_(monitor|worker_\d)\.log$/.test(f));
      assert.equal(files.length, 3, files.join(','));
      for (const f of files) renameSync(join(logDir, f), join(logDir, `${f}.1`));
      c.platforms[0]!.kill('SIGUSR1');
      // After the reopen, the next records (a worker's app call, the master's stop) land in new files.
      await waitFor(() => files.every((f) => existsSync(join(logDir, f))), 'the master and both workers to reopen their logs');
      await env.close();
    } finally {
      await c.close();
    }
  });
});
