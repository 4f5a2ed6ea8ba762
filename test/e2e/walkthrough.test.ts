/**
 * SPEC §5.2 steps 3-9 as an operator runs them, with the real commands only (spawned CLIs, daemons in their
 * own homes on loopback): `ibms -a init/start`, `ibpgenrsakeys`, `ibms -a add_node/add_node_host/add_app/
 * add_project/update_app/set_node_kv/remove_app/distribute_config`, `ibma -a init/start`, `ibas -a init/start`,
 * `ibpsend`. Then the registry is killed: transactions go on, and after its restart a change still reaches the
 * client host's replica.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigReplica } from '../../src/agent/index.js';
import { IbacEnv } from '../../src/client/index.js';
import { REPO_ROOT, cliPath, freePort } from '../../src/cli/scratch-cluster.js';
import { waitFor } from '../helpers/cluster.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-walk-'));
/** The register node, the ECIF server host, the CORE client host. */
const R = join(base, 'registry');
const E = join(base, 'ecif');
const C = join(base, 'core');

/** The file's text, or undefined while it is missing. */
function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const BIN = 'ibp_t_walk.mjs';
const pkg = (v: number): string => `// walkthrough package, version ${v}\nexport default function somain(ctx) {\n  ctx.respond({ v: ${v}, pid: process.pid });\n  return 0;\n}\n`;
let RP = 0;
let EP = 0;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one of our CLIs to completion (no IBP_HOME: every command says --home, except ibpsend below). */
function run(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(process.execPath, [cliPath(name), ...args], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, IBP_HOME: '', ...env } });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
function ok(name: string, ...args: string[]): string {
  const r = run(name, args);
  if (r.code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
const ibms = (...args: string[]): string => ok('ibms', '--home', R, ...args);
/** `IBP_HOME=core ibpsend ECIF app msg` with a JSON message. */
function ibpsend(app: string, msg: unknown): Run {
  const f = join(base, `msg-${app}.json`);
  writeFileSync(f, JSON.stringify(msg));
  return run('ibpsend', ['ECIF', app, f], { IBP_HOME: C });
}
function answer(app: string, msg: unknown): Record<string, unknown> {
  const r = ibpsend(app, msg);
  assert.equal(r.code, 0, `ibpsend ${app}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** A fresh read of a host's replica (undefined while it has none). */
function replica<T>(home: string, read: (s: ConfigReplica['snapshot']) => T): T | undefined {
  let r: ConfigReplica | undefined;
  try {
    r = ConfigReplica.open(join(home, 'run', 'ibma'));
    return read(r.snapshot);
  } catch {
    return undefined;
  } finally {
    r?.close();
  }
}

/** Live pids of the daemons of the three homes (pid files), to kill what a stop left behind. */
function daemonPids(): number[] {
  const files = [join(R, 'run', 'ibms.pid'), join(E, 'run', 'ibma.pid'), join(C, 'run', 'ibma.pid'), join(E, 'run', `ibas_127.0.0.1-${EP}.pid`)];
  return files.flatMap((f) => {
    try {
      const pid = Number(readFileSync(f, 'utf8').trim().split(/\s/)[0]);
      return pid > 0 ? [pid] : [];
    } catch {
      return [];
    }
  });
}
const seenPids = new Set<number>();
const remember = (): void => daemonPids().forEach((p) => seenPids.add(p));

function sessions(): { role: string; node: string; host: string; pid: number; load?: { busy: number; total: number } }[] {
  return JSON.parse(ibms('-s', 'sessions', '--json')) as ReturnType<typeof sessions>;
}

before(async () => {
  RP = await freePort();
  EP = await freePort();
});

after(() => {
  remember();
  run('ibas', ['-a', 'stop', '--home', E]);
  run('ibma', ['-a', 'stop', '--home', E]);
  run('ibma', ['-a', 'stop', '--home', C]);
  run('ibms', ['-a', 'stop', '--home', R]);
  // whatever did not stop (each daemon leads its own process group: the registry's worker, the platform's workers)
  for (const pid of seenPids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* stopped */
    }
  }
  rmSync(base, { recursive: true, force: true });
});

describe('SPEC §5.2 walkthrough with the real commands', () => {
  test('step 3: ibms -a init, then ibms -a start gives a monitor and a worker', () => {
    const init = ok('ibms', '-a', 'init', '--ip', '127.0.0.1', '--port', String(RP), '--home', R);
    assert.match(init, /ibms\.admin\.token/);
    assert.match(init, /next: copy the app packages into/);
    const start = ibms('-a', 'start');
    assert.match(start, new RegExp(`ibms started ip=127\\.0\\.0\\.1 port=${RP} pid=\\d+`));
    remember();
    assert.match(ibms('-s', 'status'), /ibms is running \(pid \d+\) on 127\.0\.0\.1:\d+, worker pid \d+/);
  });

  test('step 4: each comm node: ibma -a init, keys, add_node/add_node_host, ibma -a start, changed_nodes, distribute_config', async () => {
    for (const [node, home, port] of [['ECIF', E, String(EP)], ['CORE', C, '-10601']] as const) {
      ok('ibma', '-a', 'init', '--this-node', node, '--ibms', `127.0.0.1:${RP}`, '--home', home);
      assert.match(ok('ibpgenrsakeys', node, '--home', R), new RegExp(`keys/${node}\\.key \\(private, mode 0600\\)`));
      copyFileSync(join(R, 'keys', `${node}.key`), join(home, 'keys', `${node}.key`));
      assert.match(ibms('-a', 'add_node', '--node', node), new RegExp(`ok: add_node \\(journal #\\d+\\); nodes changed: ${node}`));
      ibms('-a', 'add_node_host', '--node', node, '--ip', '127.0.0.1', '--port', port);
      // never distributed yet: the agent starts and keeps asking
      const started = ok('ibma', '-a', 'start', '--home', home, '--wait', '1', ...(node === 'ECIF' ? ['--host', `127.0.0.1:${EP}`] : []));
      assert.match(started, new RegExp(`ibma node=${node} started \\(pid \\d+\\)`));
      remember();
      assert.match(ibms('-s', 'changed_nodes'), new RegExp(`^${node}$`, 'm'));
      assert.match(ibms('-a', 'distribute_config'), new RegExp(`distributed version \\d+ to \\d node\\(s\\):.*${node}`));
      await waitFor(() => replica(home, (s) => s.thisNode) === node, `${node}'s agent to write its first snapshot`, 20_000);
    }
    assert.match(ibms('-s', 'nodes'), /ECIF +0 +- +0 +127\.0\.0\.1:\d+/);
    assert.match(ibms('-s', 'nodes'), /CORE +0 +- +0 +127\.0\.0\.1:-10601/);
    // step 4.7: the server host's platform
    ok('ibas', '-a', 'init', '--ip', '127.0.0.1', '--port', String(EP), '--this-node', 'ECIF', '--home', E);
    const conf = join(E, 'etc', 'ibas.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/"max_count" : \d+/g, '"max_count" : 2'));
    assert.match(ok('ibas', '-a', 'start', '--home', E), new RegExp(`ibas ibas_127\\.0\\.0\\.1-${EP} started on 127\\.0\\.0\\.1:${EP} \\(pid \\d+, 2 workers\\)`));
    remember();
  });

  test('step 5: add apps (package into so/, add_app, add_project, distribute, save) and call one with ibpsend', async () => {
    writeFileSync(join(R, 'so', BIN), pkg(1));
    copyFileSync(join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_kv.mjs'), join(R, 'so', 'ibp_t_kv.mjs'));
    ibms('-a', 'add_app', '--app', 'ibp_t_walk', '--desc', 'walkthrough app', '--bin', BIN, '--timeout', '30');
    ibms('-a', 'add_app', '--app', 'ibp_t_kv', '--desc', 'reads node KV', '--bin', 'ibp_t_kv.mjs', '--timeout', '30', '--server-node', 'ECIF');
    assert.match(ibms('-s', 'apps'), /ibp_t_walk +ibp_t_walk\.mjs +30 +0 +- +0 +\d+ B +walkthrough app/);
    assert.match(ibms('-a', 'add_project', '--project', 'P1', '--server-nodes', 'ECIF', '--client-nodes', 'CORE', '--apps', 'ibp_t_walk ibp_t_kv'), /nodes changed: CORE ECIF/);
    assert.match(ibms('-a', 'distribute_config'), /to 2 node\(s\): CORE ECIF/);
    assert.match(ibms('-a', 'save_config'), /saved 3 files/);
    assert.match(readFileSync(join(R, 'etc', 'ibp_projects.conf'), 'utf8'), /"P1"/);
    await waitFor(() => replica(C, (s) => s.app('ibp_t_walk') !== undefined) === true, "the app in the client's replica", 20_000);
    await waitFor(() => existsSync(join(E, 'so', BIN)) && replica(E, (s) => s.servesApp('ibp_t_walk')) === true, 'the package on the server host', 20_000);
    const r = ibpsend('ibp_t_walk', { hello: 1 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { v: number }).v, 1);
    assert.match(r.stderr, new RegExp(`ok: ibp_t_walk on ECIF 127\\.0\\.0\\.1:${EP}`));
    // the platform registered with the registry, next to both agents
    await waitFor(() => sessions().some((s) => s.role === 'ibas' && s.node === 'ECIF' && s.host === `127.0.0.1:${EP}` && s.load?.total === 2), 'the platform in ibms -s sessions', 20_000);
    const rows = sessions();
    assert.ok(rows.some((s) => s.role === 'ibma' && s.node === 'CORE') || rows.some((s) => s.role === 'view' && s.node === 'CORE'), JSON.stringify(rows));
    assert.match(ibms('-s', 'sessions'), new RegExp(`^ibas +ECIF +127\\.0\\.0\\.1:${EP} +\\d+ .* \\d+/2$`, 'm'));
  });

  test('step 6: update a package in batch mode (new file in so/, update_app, cnodes_changed, distribute) and the new code answers', async () => {
    writeFileSync(join(R, 'so', BIN), pkg(2));
    assert.match(ibms('-a', 'update_app', '--app', 'ibp_t_walk'), /ok: update_app .*nodes changed: ECIF/);
    assert.match(ibms('-s', 'cnodes_changed'), /^ECIF$/m);
    ibms('-a', 'distribute_config');
    // The agent swaps the package in through an update-period file: the live file may be missing for a moment.
    await waitFor(() => readIfThere(join(E, 'so', BIN)) === pkg(2), 'the new package on the server host', 20_000);
    // the agent replaced so/<bin> before a request that must see it was sent: the next call runs version 2
    assert.equal(answer('ibp_t_walk', {}).v, 2);
  });

  test('step 9: KV config (add_node_kv, set_node_kv, distribute) is read by an app through the replica', async () => {
    assert.deepEqual(answer('ibp_t_kv', { key: 'hsm' }), { key: 'hsm', value: null, node: 'ECIF' });
    ibms('-a', 'add_node_kv', '--node', 'ECIF', '--key', 'hsm', '--value', 'model-1 10.1.1.9:1500');
    ibms('-a', 'distribute_config');
    await waitFor(() => replica(E, (s) => s.kv('hsm')) === 'model-1 10.1.1.9:1500', 'the KV on the server host', 20_000);
    assert.equal(answer('ibp_t_kv', { key: 'hsm' }).value, 'model-1 10.1.1.9:1500');
    ibms('-a', 'set_node_kv', '--node', 'ECIF', '--key', 'hsm', '--value', 'model-7 10.1.1.9:1501');
    assert.match(ibms('-s', 'cnodes_changed'), /^ECIF$/m);
    ibms('-a', 'distribute_config');
    await waitFor(() => replica(E, (s) => s.kv('hsm')) === 'model-7 10.1.1.9:1501', 'the new KV on the server host', 20_000);
    // the worker switches snapshots when idle, at most every 100 ms: the next calls see the new value
    await waitFor(() => answer('ibp_t_kv', { key: 'hsm' }).value === 'model-7 10.1.1.9:1501', 'the app to read the new value', 10_000);
    assert.match(ibms('-s', 'nodes_kv'), /ECIF +hsm +model-7 10\.1\.1\.9:1501/);
  });

  test('step 7: remove an app (still listed → refused; set_project, remove_app, distribute) and calls to it are refused, naming it', async () => {
    const refused = run('ibms', ['--home', R, '-a', 'remove_app', '--app', 'ibp_t_walk']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /IBP_ERR_REGISTRY_INVALID: .*ibp_t_walk.* still listed by project "?P1"?/);
    ibms('-a', 'set_project', '--project', 'P1', '--apps', 'ibp_t_kv');
    assert.match(ibms('-a', 'remove_app', '--app', 'ibp_t_walk'), /ok: remove_app/);
    assert.match(ibms('-s', 'cnodes_changed'), /CORE\nECIF/);
    ibms('-a', 'distribute_config');
    await waitFor(() => replica(C, (s) => s.app('ibp_t_walk')) === undefined && replica(E, (s) => s.servesApp('ibp_t_walk')) === false, 'the app gone from both replicas', 20_000);
    const r = ibpsend('ibp_t_walk', {});
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^IBP_ERR_REPLICA_UNKNOWN_APP: app ibp_t_walk is not in the local config of node CORE\ncomm status: NOT_SENT \(not in doubt\)/);
    // a client with an old replica (or curl) is refused by the server itself, by code and name
    await waitFor(() => {
      const c = spawnSync('curl', ['-s', '-i', '-X', 'POST', '--data', '{}', `http://127.0.0.1:${EP}/ibp/ibp_t_walk`], { encoding: 'utf8' });
      return /^HTTP\/1\.1 404/.test(c.stdout) && /IBP_ERR_SERVER_APP_NOT_FOUND/.test(c.stdout) && /ibp_t_walk/.test(c.stdout);
    }, 'the platform to refuse the removed app', 10_000);
    assert.equal(answer('ibp_t_kv', { key: 'hsm' }).node, 'ECIF', 'the other app still answers');
    // the agent removes the package it installed for the removed app; the other app's package stays
    await waitFor(() => !existsSync(join(E, 'so', BIN)), 'the removed app\'s package gone from the server host', 20_000);
    assert.ok(readdirSync(join(E, 'so')).some((f) => f !== BIN && !f.startsWith('.')), 'the other package is still there');
  });

  test('step 8: other registry management (shows, download_config, build_config)', () => {
    assert.match(ibms('-s', 'projects'), /P1 +ECIF +CORE +ibp_t_kv/);
    assert.match(ibms('-a', 'download_config', '--node', 'CORE'), /pushed the full view of node CORE \(version \d+\)/);
    assert.match(ibms('-a', 'build_config'), /built 3 files/);
    assert.ok(existsSync(join(R, 'etc', 'ibp_nodes.conf.bin')));
    assert.match(ibms('-s', 'nodes_changed'), /no pending changes/);
  });
});

describe('the registry is down: transactions go on, and the agents catch up after it returns', () => {
  test('kill -9 of ibms: calls keep working; after ibms -a start a change distributed reaches the client host', async () => {
    const monitor = Number(readFileSync(join(R, 'run', 'ibms.pid'), 'utf8').trim());
    const worker = Number(/worker pid (\d+)/.exec(ibms('-s', 'status'))![1]);
    process.kill(-monitor, 'SIGKILL'); // the monitor leads the group of the daemon: worker too
    await waitFor(() => ![monitor, worker].some((p) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    }), 'monitor and worker gone', 10_000);
    assert.notEqual(run('ibms', ['--home', R, '-s', 'nodes']).code, 0, 'the registry is really down');

    // transactions: the command line, and 100 calls from the client library
    assert.equal(answer('ibp_t_kv', { key: 'hsm' }).value, 'model-7 10.1.1.9:1501');
    const env = await IbacEnv.create({ home: C });
    try {
      for (let i = 0; i < 100; i++) {
        const r = await env.call('ibp_t_kv', { key: 'hsm' });
        assert.equal(r.json<{ value: string }>().value, 'model-7 10.1.1.9:1501');
      }
    } finally {
      await env.close();
    }

    // the registry returns on its address; the agents' long-polls find it again (backoff capped at 2 s)
    assert.match(ibms('-a', 'start'), new RegExp(`ibms started ip=127\\.0\\.0\\.1 port=${RP}`));
    remember();
    ibms('-a', 'add_node_kv', '--node', 'CORE', '--key', 'region', '--value', 'east');
    const t0 = Date.now();
    assert.match(ibms('-a', 'distribute_config'), /to 1 node\(s\): CORE/);
    await waitFor(() => replica(C, (s) => s.kv('region')) === 'east', "the change in the client host's replica", 20_000);
    const ms = Date.now() - t0;
    assert.ok(ms < 15_000, `caught up in ${ms} ms`);
    // and the platform registers again (its heartbeat kept trying quietly)
    await waitFor(() => sessions().some((s) => s.role === 'ibas' && s.node === 'ECIF'), 'the platform back in ibms -s sessions', 20_000);
    assert.equal(answer('ibp_t_kv', { key: 'hsm' }).value, 'model-7 10.1.1.9:1501');
  });
});
