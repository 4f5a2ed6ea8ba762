/** `ibms` and `ibpgenrsakeys` command lines against a real daemon in a temp home. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClusterConfig } from '../../../src/core/config/index.js';
import { exited, ibmsOk, makeRegistryHome, removeHome, runCli, startIbms, stopIbms, type IbmsProcess } from './harness.js';

describe('ibms -a init and ibpgenrsakeys', () => {
  let home: string;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'ibp-reg-init-'));
  });
  after(() => removeHome(home));

  test('with no arguments ibms prints its usage and exits 2; an unknown action is a usage error', async () => {
    const none = await runCli('ibms', [], home);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /usage: ibms/);
    assert.match(none.stdout, /add_node_host --node N --ip IP --port P/);
    const bad = await runCli('ibms', ['-a', 'explode'], home);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /IBP_ERR_USAGE: unknown action -a explode/);
  });

  test('init creates the directories, ibms.conf, empty cluster files and a 0600 admin token, and says what to do next', async () => {
    const out = await ibmsOk(home, '-a', 'init', '--port', '16001');
    for (const d of ['etc', 'log', 'file', 'so', 'keys', 'run']) assert.ok(statSync(join(home, d)).isDirectory(), d);
    assert.match(readFileSync(join(home, 'etc', 'ibms.conf'), 'utf8'), /"port" : 16001/);
    const cluster = loadClusterConfig(join(home, 'etc'));
    assert.deepEqual(cluster, { nodes: [], apps: [], projects: [] });
    const token = join(home, 'keys', 'ibms.admin.token');
    assert.equal(statSync(token).mode & 0o777, 0o600);
    assert.match(readFileSync(token, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.match(out, /copy the app packages into .*so/);
    assert.match(out, /ibpgenrsakeys NODE/);
    const again = await ibmsOk(home, '-a', 'init');
    assert.match(again, /already exists, left as it is/);
    assert.equal(readFileSync(token, 'utf8').length, 65, 'a second init keeps the token');
  });

  test('ibpgenrsakeys writes NODE.key (0600) and NODE.pub, and refuses to overwrite them without --force', async () => {
    const first = await runCli('ibpgenrsakeys', ['ECIF'], home);
    assert.equal(first.code, 0, first.stderr);
    const key = readFileSync(join(home, 'keys', 'ECIF.key'), 'utf8');
    assert.match(key, /BEGIN PRIVATE KEY/);
    assert.match(readFileSync(join(home, 'keys', 'ECIF.pub'), 'utf8'), /BEGIN PUBLIC KEY/);
    assert.equal(statSync(join(home, 'keys', 'ECIF.key')).mode & 0o777, 0o600);
    const again = await runCli('ibpgenrsakeys', ['ECIF'], home);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /IBP_ERR_REGISTRY_KEY_EXISTS: .*--force/);
    assert.equal(readFileSync(join(home, 'keys', 'ECIF.key'), 'utf8'), key);
    const forced = await runCli('ibpgenrsakeys', ['ECIF', '--force'], home);
    assert.equal(forced.code, 0);
    assert.notEqual(readFileSync(join(home, 'keys', 'ECIF.key'), 'utf8'), key);
    const noName = await runCli('ibpgenrsakeys', [], home);
    assert.equal(noName.code, 2);
    const badName = await runCli('ibpgenrsakeys', ['../x'], home);
    assert.equal(badName.code, 2);
  });

  test('an admin command with no registry running fails with a coded error (exit 1)', async () => {
    const r = await runCli('ibms', ['-s', 'nodes'], home);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /IBP_ERR_REGISTRY_UNREACHABLE|IBP_ERR_REGISTRY_NOT_RUNNING/);
  });
});

describe('ibms admin commands against the running daemon', () => {
  let home: string;
  let ibms: IbmsProcess | undefined;
  before(async () => {
    home = await makeRegistryHome();
    ibms = await startIbms(home);
  });
  after(async () => {
    await stopIbms(ibms);
    removeHome(home);
  });

  test('a second start in the same home is refused', async () => {
    const r = await runCli('ibms', ['-a', 'start', '--foreground'], home);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /IBP_ERR_REGISTRY_ALREADY_RUNNING/);
    assert.match(await ibmsOk(home, '-s', 'status'), new RegExp(`running \\(pid ${ibms!.pid}\\) on 127\\.0\\.0\\.1:${ibms!.port}`));
  });

  test('nodes, hosts, apps, projects and KV are added with the original flags and shown as aligned tables', async () => {
    await ibmsOk(home, '-a', 'add_node', '--node', 'ECIF');
    await ibmsOk(home, '-a', 'add_node', '--node', 'CORE', '--invalid', '0');
    await ibmsOk(home, '-a', 'add_node_host', '--node', 'ECIF', '--ip', '127.0.0.2', '--port', '18001');
    await ibmsOk(home, '-a', 'add_node_host', '--node', 'CORE', '--ip', '127.0.0.3', '--port', '-10601');
    await ibmsOk(home, '-a', 'add_app', '--app', 'ABCD0001', '--desc', 'query customer', '--bin', 'ABCD0001.mjs', '--timeout', '60');
    await ibmsOk(home, '-a', 'add_project', '--project', 'P1', '--server-nodes', 'ECIF', '--client-nodes', 'CORE', '--apps', 'ABCD0001');
    const kv = await ibmsOk(home, '-a', 'add_node_kv', '--node', 'ECIF', '--key', 'hsm_ip', '--value', '10.0.0.9');
    assert.match(kv, /^ok: add_node_kv \(journal #\d+\); nodes changed: ECIF/);

    const nodes = await ibmsOk(home, '-s', 'nodes');
    const lines = nodes.trimEnd().split('\n');
    assert.match(lines[0]!, /^node\s+invalid\s+key\s+kv\s+hosts$/);
    const hostCol = lines[0]!.indexOf('hosts');
    assert.ok(lines.slice(1).every((l) => l.indexOf('127.0.0.') === hostCol), `aligned:\n${nodes}`);
    assert.match(nodes, /CORE .*127\.0\.0\.3:-10601/);
    assert.match(nodes, /ECIF .*127\.0\.0\.2:18001/);
    assert.match(await ibmsOk(home, '-s', 'apps'), /ABCD0001\s+ABCD0001\.mjs\s+60\s+0\s+-\s+0\s+missing\s+query customer/);
    assert.match(await ibmsOk(home, '-s', 'projects'), /P1\s+ECIF\s+CORE\s+ABCD0001/);
    assert.match(await ibmsOk(home, '-s', 'nodes_kv'), /ECIF\s+hsm_ip\s+10\.0\.0\.9/);
    const json = JSON.parse(await ibmsOk(home, '-s', 'nodes', '--json')) as { node: string }[];
    assert.deepEqual(json.map((r) => r.node).sort(), ['CORE', 'ECIF']);
  });

  test('nodes_changed (and its aliases) lists pending nodes until distribute_config pushes them', async () => {
    for (const alias of ['nodes_changed', 'changed_nodes', 'cnodes_changed']) {
      const out = await ibmsOk(home, '-s', alias);
      assert.match(out, /^node\n/, alias);
      assert.match(out, /\bCORE\b/);
      assert.match(out, /\bECIF\b/);
    }
    const d = await ibmsOk(home, '-a', 'distribute_config');
    assert.match(d, /^distributed version \d+ to \d+ node\(s\): .*ECIF/);
    assert.equal((await ibmsOk(home, '-s', 'nodes_changed')).trim(), 'no pending changes');
    assert.match(await ibmsOk(home, '-a', 'commit_config'), /nothing to distribute/);
    assert.match(await ibmsOk(home, '-a', 'download_config', '--node', 'CORE'), /pushed the full view of node CORE \(version \d+\)/);
  });

  test('save_config writes the cluster files the registry loads back, build_config the .bin images', async () => {
    const saved = await ibmsOk(home, '-a', 'save_config');
    assert.match(saved, /saved 3 files/);
    const c = loadClusterConfig(join(home, 'etc'));
    assert.deepEqual(c.nodes.map((n) => n.node).sort(), ['CORE', 'ECIF']);
    assert.equal(c.nodes.find((n) => n.node === 'ECIF')!.kv.hsm_ip, '10.0.0.9');
    await ibmsOk(home, '-a', 'build_config');
    assert.ok(existsSync(join(home, 'etc', 'ibp_nodes.conf.bin')));
  });

  test('wrong or missing flags are usage errors (exit 2); a change the store refuses is exit 1 naming the problem', async () => {
    const missing = await runCli('ibms', ['-a', 'add_node_host', '--node', 'ECIF', '--ip', '127.0.0.9'], home);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /-a add_node_host needs --port/);
    const extra = await runCli('ibms', ['-a', 'remove_node', '--node', 'ECIF', '--app', 'X'], home);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /does not take --app/);
    const unknownShow = await runCli('ibms', ['-s', 'everything'], home);
    assert.equal(unknownShow.code, 2);
    const refused = await runCli('ibms', ['-a', 'add_project', '--project', 'P2', '--server-nodes', 'NOPE', '--client-nodes', 'CORE', '--apps', 'ABCD0001'], home);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^IBP_ERR_\w+: .*NOPE/);
  });

  test('-a stop stops the daemon in order and removes its pid file', async () => {
    const out = await ibmsOk(home, '-a', 'stop');
    assert.match(out, /ibms stopped/);
    const { code } = await exited(ibms!.child);
    assert.equal(code, 0);
    assert.equal(existsSync(join(home, 'run', 'ibms.pid')), false);
    ibms = undefined;
  });
});
