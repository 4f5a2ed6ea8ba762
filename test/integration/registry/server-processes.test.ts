/** The ibms processes: monitor + worker, restart of a killed worker, orderly SIGTERM, SIGUSR1, daemon mode. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryClient, WireView } from '../../../src/registry/index.js';
import {
  adminClient, alive, exited, ibmsOk, killGroup, makeRegistryHome, nodeClient, removeHome, runCli, startIbms, stopIbms, waitFor, type IbmsProcess,
} from './harness.js';

describe('ibms monitor and worker processes', () => {
  let home: string;
  let ibms: IbmsProcess | undefined;
  let admin: RegistryClient;
  before(async () => {
    home = await makeRegistryHome();
    await runCli('ibpgenrsakeys', ['ECIF'], home);
    ibms = await startIbms(home);
    admin = adminClient(home, ibms);
    await admin.admin('POST', 'apply', { action: 'add_node', node: 'ECIF' });
    await admin.admin('POST', 'distribute_config', {});
  });
  after(async () => {
    await stopIbms(ibms);
    removeHome(home);
  });

  test('start gives a monitor and one worker, and writes run/ibms.pid with the monitor pid', async () => {
    assert.notEqual(ibms!.workerPid, ibms!.pid);
    assert.ok(alive(ibms!.workerPid));
    assert.equal(readFileSync(join(home, 'run', 'ibms.pid'), 'utf8').trim(), String(ibms!.pid));
    assert.equal((await admin.health()).pid, ibms!.workerPid, 'the worker serves the API');
  });

  test('kill -9 of the worker: the monitor starts another on the same port, with the journaled state', async () => {
    const before = ibms!.workerPid;
    process.kill(before, 'SIGKILL');
    let now = 0;
    await waitFor(async () => {
      now = await admin.health().then((h) => h.pid, () => 0);
      return now !== 0 && now !== before;
    }, 'a new worker to answer', 30_000);
    assert.ok(alive(ibms!.pid), 'the monitor lives on');
    const { rows } = await admin.admin<{ rows: { node: string }[] }>('GET', 'nodes');
    assert.deepEqual(rows.map((r) => r.node), ['ECIF']);
    assert.match(readFileSync(join(home, 'log', 'ibms_monitor.log'), 'utf8'), /worker died: restarting it/);
    ibms!.workerPid = now;
  });

  test('SIGUSR1 reopens the log files of monitor and worker', async () => {
    const workerLog = join(home, 'log', 'ibms_worker.log');
    const monitorLog = join(home, 'log', 'ibms_monitor.log');
    renameSync(workerLog, `${workerLog}.1`);
    renameSync(monitorLog, `${monitorLog}.1`);
    process.kill(ibms!.pid, 'SIGUSR1');
    await waitFor(() => existsSync(workerLog) && existsSync(monitorLog), 'both log files to be reopened', 15_000);
  });

  test('SIGTERM: a parked long-poll is answered 304 at once, then worker and monitor exit 0 and the pid file goes', async () => {
    const ecif = nodeClient(home, ibms!, 'ECIF');
    const cur = (await ecif.getView()) as { view: WireView };
    const parked = ecif.getView(cur.view.version, 60);
    await new Promise((r) => setTimeout(r, 300));
    const worker = ibms!.workerPid;
    const t0 = Date.now();
    ibms!.child.kill('SIGTERM');
    assert.equal((await parked).status, 304);
    assert.ok(Date.now() - t0 < 10_000, 'the long-poll did not wait its 60 s');
    const { code } = await exited(ibms!.child);
    assert.equal(code, 0);
    await waitFor(() => !alive(worker), 'the worker to exit', 10_000);
    assert.equal(existsSync(join(home, 'run', 'ibms.pid')), false);
    assert.match(readFileSync(join(home, 'log', 'ibms_main.log'), 'utf8'), /ibms stopped/);
    ibms = undefined;
  });

  test('when the monitor is killed, the worker notices and exits', async () => {
    ibms = await startIbms(home);
    const worker = ibms.workerPid;
    process.kill(ibms.pid, 'SIGKILL');
    await waitFor(() => !alive(worker), 'the orphaned worker to exit', 20_000);
    killGroup(ibms.child);
    ibms = undefined;
  });
});

describe('ibms -a start as a daemon', () => {
  let home: string;
  let pid = 0;
  before(async () => {
    home = await makeRegistryHome();
  });
  after(() => {
    if (pid && alive(pid)) process.kill(-pid, 'SIGKILL');
    removeHome(home);
  });

  test('start detaches, prints the address, and -a stop stops it', async () => {
    const out = await ibmsOk(home, '-a', 'start');
    const m = /ibms started ip=127\.0\.0\.1 port=(\d+) pid=(\d+)/.exec(out);
    assert.ok(m, out);
    pid = Number(m[2]);
    assert.ok(alive(pid));
    assert.match(await ibmsOk(home, '-s', 'status'), /is running/);
    assert.match(await ibmsOk(home, '-s', 'nodes'), /no nodes/);
    assert.match(await ibmsOk(home, '-a', 'stop'), new RegExp(`ibms stopped \\(pid ${pid}\\)`));
    assert.equal(alive(pid), false);
    const st = await runCli('ibms', ['-s', 'status'], home);
    assert.equal(st.code, 1);
    assert.match(st.stdout, /not running/);
  });
});
