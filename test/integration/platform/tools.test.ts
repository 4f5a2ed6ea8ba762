import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { IbacEnv } from '../../../src/client/index.js';
import { cliPath, stopPlatform } from '../../../src/cli/scratch-cluster.js';
import { boardOf, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const run = (home: string, cli: 'ibas' | 'ibp', ...args: string[]) =>
  spawnSync(process.execPath, [cliPath(cli), ...args], { env: { ...process.env, IBP_HOME: home }, encoding: 'utf8' });

/** The 1-based line of the first occurrence of `needle` in a file. */
const lineOf = (file: string, needle: string): number => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('operator tools on a running platform', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ serverHosts: 2, workers: 2 });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('ibas -a is_running: exit 0 while it runs, 1 when it does not', () => {
    const yes = run(c.serverHomes[0]!, 'ibas', '-a', 'is_running');
    assert.equal(yes.status, 0, yes.stderr);
    assert.match(yes.stdout, /is running \(pid \d+\)/);
  });

  test('ibas -s bbdetail shows every worker: state, pid, since, transactions served, current app', async () => {
    const slow = env.call('ibp_t_slow', '1500', { node: 'ECIF' });
    await waitFor(() => boardOf(c, 0).slots.some((s) => s.state === 'busy') || boardOf(c, 1).slots.some((s) => s.state === 'busy'), 'a busy worker');
    const i = boardOf(c, 0).slots.some((s) => s.state === 'busy') ? 0 : 1;
    const r = run(c.serverHomes[i]!, 'ibas', '-s', 'bbdetail');
    assert.equal(r.status, 0, r.stderr);
    const [head, ...rows] = r.stdout.trim().split('\n');
    const cols = head!.trim().split(/\s+/);
    assert.deepEqual(cols, ['index', 'pid', 'state', 'since', 'transactions', 'connections', 'app']);
    const cells = rows.map((l) => l.trim().split(/\s+/));
    const board = boardOf(c, i).slots.filter((s) => s.state !== 'empty');
    assert.deepEqual(cells.map((x) => Number(x[1])).sort(), board.map((s) => s.pid).sort(), 'one row per worker, with its pid');
    const busy = cells.find((x) => x[2] === 'busy');
    assert.ok(busy, r.stdout);
    assert.equal(busy[6], 'ibp_t_slow', 'the busy worker shows the app it runs');
    assert.ok(Math.abs(Date.parse(busy[3]!) - Date.now()) < 10_000, `since is a recent time: ${busy[3]}`);
    assert.ok(cells.filter((x) => x[2] === 'idle').every((x) => x[6] === '-'));
    assert.equal((await slow).text(), 'done 1500');
  });

  test('ibp ping NODE: every host answers the IB2 handshake with its latency; exit 0', () => {
    const r = run(c.clientHome, 'ibp', 'ping', 'ECIF', '--count', '3');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    for (const port of c.ports) assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${port}\\s+ok\\s+[\\d.]+ ms\\s+[\\d.]+ ms\\s+node ECIF, \\d+/2 workers busy`));
    assert.match(r.stdout, /node ECIF: all 2 hosts answer/);
    const unknown = run(c.clientHome, 'ibp', 'ping', 'NO_SUCH_NODE');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /IBP_ERR_REPLICA_UNKNOWN_NODE/);
  });

  test('ibp top --once: the pool and per-app TPS and latency, from the platform itself', async () => {
    const end = Date.now() + 1500;
    let calls = 0;
    while (Date.now() < end) {
      await env.call('ibp_test_echo', 'x', { node: 'ECIF' });
      calls++;
    }
    // Both hosts served some; look at the first. The master writes its statistics about once a second.
    let frame = '';
    await waitFor(() => {
      const r = run(c.serverHomes[0]!, 'ibp', 'top', '--once');
      frame = r.stdout;
      const row = frame.split('\n').find((l) => l.startsWith('ibp_test_echo'));
      return r.status === 0 && row !== undefined && Number(row.trim().split(/\s+/)[1]) > 0;
    }, 'ibp top to show ibp_test_echo with a rate', 15_000);
    assert.match(frame, new RegExp(`^ibas ibas_127\\.0\\.0\\.1-${c.ports[0]} {2}pid \\d+ {2}STATIC_WORKERPOOL \\(2\\)`));
    assert.match(frame, /workers 2: idle \d {2}busy \d/);
    const [, tps, avg, max, total, errors] = frame.split('\n').find((l) => l.startsWith('ibp_test_echo'))!.trim().split(/\s+/).map(Number) as number[];
    assert.ok(tps! > 0 && avg! > 0 && max! >= avg!, frame);
    assert.ok(total! >= 1 && total! <= calls + 10, `total ${total} of ${calls} calls over two hosts`);
    assert.equal(errors, 0);
  });

  test('ibp top redraws every --interval until stopped', async () => {
    const child = spawn(process.execPath, [cliPath('ibp'), 'top', '--interval', '100'], { env: { ...process.env, IBP_HOME: c.serverHomes[0]! } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => (out.match(/^ibas ibas_/gm) ?? []).length >= 3, 'three frames', 10_000);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  test('ibp ping: a host that is down is reported and the exit code is 1', async () => {
    await stopPlatform(c.platforms[1]!);
    const r = run(c.clientHome, 'ibp', 'ping', 'ECIF', '--timeout', '2000');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${c.ports[0]}\\s+ok`));
    assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${c.ports[1]}\\s+FAILED .*IBP_ERR_CLIENT_CONNECT_FAILED`));
    assert.match(r.stdout, /1 of 2 hosts do not answer/);
    const st = run(c.serverHomes[1]!, 'ibas', '-a', 'is_running');
    assert.equal(st.status, 1);
    assert.match(st.stdout, /is not running/);
  });
});

describe('ibas -a check', () => {
  let c: TestCluster;
  let blocker: Server | undefined;
  before(async () => {
    c = await startTestCluster({ workers: 1, start: false });
  });
  after(async () => {
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    await c?.close();
  });

  test('a good home: exit 0', () => {
    const r = run(c.serverHomes[0]!, 'ibas', '-a', 'check');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: .*etc\/ibas\.conf and .*etc\/ibma\.conf\n$/);
  });

  test('syntax and schema: every problem of both files, each with file:line:col; exit 1', () => {
    const home = c.serverHomes[0]!;
    const ibasConf = join(home, 'etc', 'ibas.conf');
    const ibmaConf = join(home, 'etc', 'ibma.conf');
    const goodIbas = readFileSync(ibasConf, 'utf8');
    const goodIbma = readFileSync(ibmaConf, 'utf8');
    try {
      writeFileSync(ibasConf, goodIbas.replace('"max_count" :', '"max_cuont" : 3 , "max_count" :').replace('"STATIC_WORKERPOOL"', '"SOMETIMES"'));
      writeFileSync(ibmaConf, goodIbma.replace('"connecting_timeout" : 10', '"connecting_timeout" : -1'));
      const r = run(home, 'ibas', '-a', 'check');
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const mpmLine = lineOf(ibasConf, 'max_cuont');
      assert.match(r.stdout, new RegExp(`ibas\\.conf:${mpmLine}:\\d+: unknown key ibas\\.mpm\\.max_cuont`));
      assert.match(r.stdout, new RegExp(`ibas\\.conf:${mpmLine}:\\d+: ibas\\.mpm\\.mode: got "SOMETIMES"`));
      assert.match(r.stdout, new RegExp(`ibma\\.conf:${lineOf(ibmaConf, 'connecting_timeout')}:\\d+: ibac\\.connecting_timeout: got -1`));
      assert.match(r.stdout, /^3 errors in /m);
      writeFileSync(ibasConf, '{ "ibas" : { "server" : { "ip" : "127.0.0.1" ,\n "port" : } } }\n');
      const syntax = run(home, 'ibas', '-a', 'check');
      assert.equal(syntax.status, 1);
      assert.match(syntax.stdout, /ibas\.conf:2:\d+: /);
    } finally {
      writeFileSync(ibasConf, goodIbas);
      writeFileSync(ibmaConf, goodIbma);
    }
  });

  test('semantics: another node in ibma.conf, a missing package, a listen port in use', async () => {
    const home = c.serverHomes[0]!;
    const ibmaConf = join(home, 'etc', 'ibma.conf');
    const goodIbma = readFileSync(ibmaConf, 'utf8');
    try {
      writeFileSync(ibmaConf, goodIbma.replace('"this_node" : "ECIF"', '"this_node" : "CORE"'));
      const other = run(home, 'ibas', '-a', 'check');
      assert.equal(other.status, 1, other.stdout);
      assert.match(other.stdout, new RegExp(`ibma\\.conf:${lineOf(ibmaConf, 'this_node')}:\\d+: ibma\\.this_node is CORE but the local config replica .* is for node ECIF`));
    } finally {
      writeFileSync(ibmaConf, goodIbma);
    }
    rmSync(join(home, 'so', 'ibp_t_pid.mjs'));
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen({ host: '127.0.0.1', port: c.ports[0]!, exclusive: true }, () => r()));
    const r = run(home, 'ibas', '-a', 'check');
    assert.equal(r.status, 1, r.stdout);
    const appsConf = join(home, 'etc', 'ibp_apps.conf');
    assert.match(r.stdout, new RegExp(`ibp_apps\\.conf:${lineOf(appsConf, '"ibp_t_pid"')}:\\d+: app ibp_t_pid: its package .*so/ibp_t_pid\\.mjs is missing`));
    assert.match(r.stdout, new RegExp(`ibas\\.conf:\\d+:\\d+: 127\\.0\\.0\\.1:${c.ports[0]} is in use by another process`));
    assert.match(r.stdout, /^2 errors in /m);
  });
});
