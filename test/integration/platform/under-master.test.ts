import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv } from '../../../src/client/index.js';
import { cliPath, REPO_ROOT } from '../../../src/cli/scratch-cluster.js';
import { ibasMasterStatus, isProcessAlive, pidPathOf, runningPid, servingGenerationPid } from '../../../src/platform/index.js';
import { startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';
import { MasterProcess, Scratch } from '../master/harness.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ibas(home: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath('ibas'), ...args], { env: { ...process.env, IBP_HOME: home }, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type Rec = Record<string, unknown> & { msg?: string; pid?: number };

/** The NDJSON records of the platform's monitor log (the master and the generations write there). */
function monitorLog(home: string, port: number): Rec[] {
  return readFileSync(join(home, 'log', `ibas_127.0.0.1-${port}_monitor.log`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Rec);
}

describe('ibas under the generic master', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanups.reverse()) await f();
  });

  async function daemon(): Promise<{ c: TestCluster; home: string; port: number; pidPath: string }> {
    const c = await startTestCluster({ workers: 1, start: false });
    const home = c.serverHomes[0]!;
    const port = c.ports[0]!;
    const pidPath = pidPathOf(home, '127.0.0.1', port);
    cleanups.push(async () => {
      await ibas(home, '-a', 'stop');
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
    const start = await ibas(home, '-a', 'start');
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /started on 127\.0\.0\.1:\d+ \(pid \d+, 1 workers\); serving generation pid \d+/);
    return { c, home, port, pidPath };
  }

  test('the master holds the socket and the pid file; a generation that crashes at start is throttled, then recovers', async () => {
    const { c, home, port, pidPath } = await daemon();
    const env = await IbacEnv.create({ home: c.clientHome });
    cleanups.push(() => env.close());
    const master = runningPid(pidPath)!;
    const status = await ibasMasterStatus({ pidPath });
    const first = servingGenerationPid(status)!;
    assert.ok(first && first !== master, 'a generation process under the master');
    // A crash counts as a quick one within 2 s of the start: let the first generation run longer than that.
    const startedAt = Date.parse(status!.services[0]!.processes[0]!.startedAt);
    await waitFor(() => Date.now() > startedAt + 2500, 'the first generation to have run 2.5 s');
    assert.equal((await env.call('ibp_test_echo', 'a')).text(), 'a');

    // Break the config the generation reads at its start, then kill the generation: every restart now fails.
    const confPath = join(home, 'etc', 'ibas.conf');
    const conf = readFileSync(confPath, 'utf8');
    writeFileSync(confPath, conf.replace('"mpm" : {', '"mpm" : { oops'));
    let fixed = false;
    try {
      process.kill(first, 'SIGKILL');
      const crashes = (): Rec[] => monitorLog(home, port).filter((r) => r.msg === 'service process exited' && r.crashed === true && r.pid !== first);
      await waitFor(() => crashes().length >= 4, '4 quick crashes of the restarted generation', 30_000);
      const seen = crashes();
      // Restarted after 0.1 s, 0.2 s, 0.4 s, 0.8 s: doubling, not a loop.
      assert.deepEqual(seen.slice(0, 4).map((r) => r.restartInMs), [100, 200, 400, 800]);
      assert.match(String(seen[0]!.status), /IBP_ERR_CONFIG_SYNTAX/, 'the master logs the reason the generation gave');
      // (`ibas -s status` reads the broken ibas.conf too; the master answers on its lock socket.)
      const st = await ibasMasterStatus({ pidPath });
      assert.equal(st?.pid, master, 'the master still runs');
      assert.ok(st.services[0]!.quickCrashes >= 4, JSON.stringify(st.services[0]));
      // The first crash (after a long run) was restarted at once; the throttle counts only quick crashes.
      const killed = monitorLog(home, port).find((r) => r.msg === 'service process exited' && r.pid === first);
      assert.equal(killed?.signal, 'SIGKILL');
      assert.equal(killed?.restartInMs, 0);
      const started = monitorLog(home, port).filter((r) => r.msg === 'service process started').length;
      assert.ok(started <= 8, `${started} starts: throttled`);
      writeFileSync(confPath, conf);
      fixed = true;
      // The next throttled start (at most 1.6 s away, more on a loaded machine) serves again on the same socket.
      await waitFor(async () => servingGenerationPid(await ibasMasterStatus({ pidPath })) !== undefined, 'a generation to serve again', 30_000);
    } finally {
      if (!fixed) writeFileSync(confPath, conf);
    }
    assert.equal(runningPid(pidPath), master, 'the same master throughout');
    assert.equal((await env.call('ibp_test_echo', 'b')).text(), 'b');
  });

  test('a generation whose master was killed (SIGKILL) stops by itself; ibas can be started again', async () => {
    const { c, home, pidPath } = await daemon();
    const master = runningPid(pidPath)!;
    const gen = servingGenerationPid(await ibasMasterStatus({ pidPath }))!;
    process.kill(master, 'SIGKILL');
    await waitFor(() => !isProcessAlive(gen), 'the orphaned generation to stop', 20_000);
    const again = await ibas(home, '-a', 'start');
    assert.equal(again.code, 0, again.stderr);
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      assert.equal((await env.call('ibp_test_echo', 'c')).text(), 'c');
    } finally {
      await env.close();
    }
  });

  test('a hand-written ibas.cf under ibp master serves; a socket that is not ibas.server ip:port is refused', async () => {
    const c = await startTestCluster({ workers: 1, start: false });
    const sc = new Scratch();
    const home = c.serverHomes[0]!;
    const port = c.ports[0]!;
    const generation = join(REPO_ROOT, 'dist', 'src', 'platform', 'generation-main.js');
    const command = `${process.execPath} ${generation} --home ${home} --config ${join(home, 'etc', 'ibas.conf')}`;
    let m: MasterProcess | undefined;
    try {
      mkdirSync(join(sc.dir, 'etc', 'wrong'), { recursive: true });
      // The wrong address first: the generation sees it before it accepts anything, and says so.
      writeFileSync(join(sc.dir, 'etc', 'wrong', 'ibas.cf'), [`server-command = ${command}`, 'server-service = ibas://127.0.0.1:0', 'server-ready = notify', ''].join('\n'));
      m = await MasterProcess.start(['-C', 'etc/wrong'], sc.dir);
      const exit = await m.waitLog((r) => r.msg === 'service process exited' && r.service === 'ibas', 'the generation to refuse the socket', 60_000);
      assert.equal(exit.code, 1);
      assert.match(String(exit.status), new RegExp(`IBP_ERR_PLATFORM_LISTEN: the socket inherited from the master listens on 127\\.0\\.0\\.1:\\d+, but .*ibas\\.conf names 127\\.0\\.0\\.1:${port}`));
      assert.equal((await m.stop()).code, 0);
      // The right address: it serves.
      sc.write('ibas.cf', `server-command = ${command}`, `server-service = ibas://127.0.0.1:${port}`, 'server-ready = notify');
      m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
      await m.waitLog((r) => r.msg === 'service ready' && r.service === 'ibas', 'the generation to be ready', 60_000);
      const env = await IbacEnv.create({ home: c.clientHome });
      try {
        assert.equal((await env.call('ibp_test_echo', 'cf')).text(), 'cf');
      } finally {
        await env.close();
      }
      assert.equal((await m.stop()).code, 0);
    } finally {
      m?.kill();
      sc.remove();
      await c.close();
    }
  });
});
