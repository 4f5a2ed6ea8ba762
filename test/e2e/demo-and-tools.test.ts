import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, cliPath } from '../../src/cli/scratch-cluster.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

describe('as a new user runs it', () => {
  let c: TestCluster;
  before(async () => {
    c = await startTestCluster({ workers: 2 });
  });
  after(async () => {
    await c?.close();
  });

  test('npm start -- --once: the demo cluster runs its transactions and exits 0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ibp-demo-'));
    try {
      const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'cli', 'demo.js'), '--once'], {
        env: { ...process.env, IBP_DEMO_DIR: dir },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      // installed through the registry: ibms, the admin API, an agent per host, platforms on the agents' replicas
      assert.match(r.stdout, /registry: ibms on 127\.0\.0\.1:\d+ \(monitor pid \d+, worker pid \d+\)/);
      assert.match(r.stdout, /distributed version \d+ to CORE ECIF; saved/);
      assert.match(r.stdout, /agents: CORE@\S+ node=CORE version=\d+ view=\d+; ECIF@\S+ node=ECIF version=\d+ view=\d+; ECIF@/);
      assert.match(r.stdout, /10 echo transactions over short connections: all answered/);
      assert.match(r.stdout, /200 echo transactions over one long connection/);
      assert.match(r.stdout, /file transaction: sent 2 files, got 2 back/);
      assert.match(r.stdout, /ibpsend\.js ECIF ibp_test_echo/);
      assert.match(r.stdout, /curl -s -X POST/);
      // both platforms registered (heartbeats) and the three agents show in ibms -s sessions
      const sessions = r.stdout.slice(r.stdout.indexOf('ibms -s sessions:'));
      assert.equal(sessions.match(/^ibas +ECIF +127\.0\.0\.1:\d+ +\d+ .* \d+\/2$/gm)?.length, 2, sessions);
      assert.equal(sessions.match(/^ibma +(CORE|ECIF) /gm)?.length, 3, sessions);
      assert.match(r.stdout, /ibms\.js -s sessions/);
      // nothing left running from the demo's homes
      const left = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8' });
      assert.equal(left.stdout.trim(), '', `processes left: ${left.stdout}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('curl calls ibp_test_echo over HTTP', () => {
    const r = spawnSync('curl', ['-s', '-i', '-X', 'POST', '--data', '{"hello":"curl"}', `http://127.0.0.1:${c.ports[0]}/ibp/ibp_test_echo`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    assert.match(r.stdout, /x-ibp-load: \d+\/2/i);
    assert.ok(r.stdout.trimEnd().endsWith('{"hello":"curl"}'), r.stdout);
  });

  test('curl gets a coded 404 for an app the node does not serve', () => {
    const r = spawnSync('curl', ['-s', '-i', '-X', 'POST', '--data', 'x', `http://127.0.0.1:${c.ports[0]}/ibp/no_such_app`], { encoding: 'utf8' });
    assert.match(r.stdout, /^HTTP\/1\.1 404/);
    assert.match(r.stdout, /IBP_ERR_SERVER_APP_NOT_FOUND/);
  });

  test('the raw-socket IB1 example script gets an echo back', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'examples', 'ib1-call.mjs'), '127.0.0.1', String(c.ports[0])], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok {"hello":"ib1"}');
  });

  test('ibpsend sends a message file and prints the answer; exit codes tell in-doubt apart', () => {
    const msg = join(c.base, 'msg.json');
    writeFileSync(msg, '{"via":"ibpsend"}');
    const env = { ...process.env, IBP_HOME: c.clientHome };
    const ok = spawnSync(process.execPath, [cliPath('ibpsend'), 'ECIF', 'ibp_test_echo', msg], { env, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), '{"via":"ibpsend"}');
    assert.match(ok.stderr, /ok: ibp_test_echo on ECIF 127\.0\.0\.1:\d+/);
    const doubt = spawnSync(process.execPath, [cliPath('ibpsend'), 'ECIF', 'ibp_t_crash', msg], { env, encoding: 'utf8' });
    assert.equal(doubt.status, 3, doubt.stderr);
    assert.match(doubt.stderr, /IN DOUBT/);
    const unknown = spawnSync(process.execPath, [cliPath('ibpsend'), 'ECIF', 'nope', msg], { env, encoding: 'utf8' });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /IBP_ERR_REPLICA_UNKNOWN_APP.*\n.*not in doubt/);
    const usage = spawnSync(process.execPath, [cliPath('ibpsend'), 'ECIF'], { env, encoding: 'utf8' });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /IBP_ERR_USAGE/);
  });
});
