/**
 * The ibma agent against the real registry: `ibms -a init`, `ibpgenrsakeys`, `ibms -a start --foreground`,
 * admin commands through the `ibms` CLI, and `ibma` in its own home.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigReplica, readIndexVersion } from '../../../src/agent/index.js';
import { ibpHome } from '../../../src/core/home.js';

const CLI = fileURLToPath(new URL('../../../src/cli/', import.meta.url));
const IBMS = join(CLI, 'ibms.js');
const IBMA = join(CLI, 'ibma.js');
const GENKEYS = join(CLI, 'ibpgenrsakeys.js');

const base = mkdtempSync(join(tmpdir(), 'ibp-agent-it-'));
const regHome = join(base, 'registry');
const agentHome = join(base, 'ecif');
const agent = ibpHome(agentHome);
const PKG_V1 = 'export default async function echo(ctx) { return 0; } // v1\n';
const PKG_V2 = 'export default async function echo(ctx) { return 0; } // v2, a little longer\n';
const children = new Set<ChildProcess>();
let port = 0;

/** A free loopback port (the registry must come back on the same one). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Runs a CLI to completion; fails the test with its output when it exits non-zero. */
function run(script: string, args: string[]): string {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, IBP_HOME: '' } });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const ibms = (...args: string[]): string => run(IBMS, [...args, '--home', regHome]);
const ibma = (...args: string[]): string => run(IBMA, [...args, '--home', agentHome]);

interface Started {
  child: ChildProcess;
  line: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a daemon in the foreground (own process group) and waits for its readiness line, racing its exit. */
async function startForeground(script: string, args: string[], ready: RegExp, timeoutMs = 30_000): Promise<Started> {
  const child = spawn(process.execPath, [script, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script}: no readiness line within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.split('\n').find((l) => ready.test(l));
      if (m !== undefined) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (code ${code}, signal ${signal}) before it was ready\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return { child, line, exited };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    /* already gone */
  }
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

/** The agent's current view of its own KV key `k` (a fresh read of the replica). */
function agentKv(key: string): string | undefined {
  try {
    const r = ConfigReplica.open(agent.replica);
    const v = r.snapshot.kv(key);
    r.close();
    return v;
  } catch {
    return undefined;
  }
}
const startRegistry = (): Promise<Started> => startForeground(IBMS, ['-a', 'start', '--foreground', '--home', regHome], /^ibms ready /);
const startAgent = (): Promise<Started> =>
  startForeground(IBMA, ['-a', 'start', '--foreground', '--home', agentHome, '--host', '127.0.0.1:18001'], /^ibma ready node=ECIF /);

describe('ibma agent with the real ibms registry', () => {
  let registry: Started;
  let ibmaProc: Started;

  before(async () => {
    port = await freePort();
    ibms('-a', 'init', '--ip', '127.0.0.1', '--port', String(port));
    run(GENKEYS, ['ECIF', '--home', regHome]);
    run(GENKEYS, ['CORE', '--home', regHome]);
    writeFileSync(join(regHome, 'so', 'echo.mjs'), PKG_V1);
    registry = await startRegistry();
    ibms('-a', 'add_node', '--node', 'ECIF', '--key-exp', 'ecif-secret-key-1');
    ibms('-a', 'add_node_host', '--node', 'ECIF', '--ip', '127.0.0.1', '--port', '18001');
    ibms('-a', 'add_node', '--node', 'CORE', '--key-exp', 'core-secret-key');
    ibms('-a', 'add_app', '--app', 'ibp_t_echo', '--desc', 'echo', '--bin', 'echo.mjs', '--timeout', '30');
    ibms('-a', 'add_project', '--project', 'P1', '--server-nodes', 'ECIF', '--client-nodes', 'CORE', '--apps', 'ibp_t_echo');
    ibms('-a', 'add_node_kv', '--node', 'ECIF', '--key', 'color', '--value', 'red');
    ibms('-a', 'distribute_config');

    ibma('-a', 'init', '--this-node', 'ECIF', '--ibms', `127.0.0.1:${port}`);
    copyFileSync(join(regHome, 'keys', 'ECIF.key'), join(agentHome, 'keys', 'ECIF.key'));
    ibmaProc = await startAgent();
  });

  after(async () => {
    const daemonPid = Number.parseInt(existsSync(join(agentHome, 'run', 'ibma.pid')) ? readFileSync(join(agentHome, 'run', 'ibma.pid'), 'utf8') : '', 10);
    if (daemonPid > 0) {
      try {
        process.kill(daemonPid, 'SIGKILL');
      } catch {
        /* not running */
      }
    }
    for (const c of [...children]) killGroup(c, 'SIGKILL');
    await waitFor(() => children.size === 0, 'the daemons to exit', 10_000).catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  });

  it('ibma - at start it fetches the view, the packages and the decrypted keys into the local replica', () => {
    assert.match(ibmaProc.line, /^ibma ready node=ECIF version=1 view=\d+$/);
    assert.equal(readFileSync(join(agentHome, 'so', 'echo.mjs'), 'utf8'), PKG_V1);
    const r = ConfigReplica.open(agent.replica);
    const snap = r.snapshot;
    r.close();
    assert.equal(snap.thisNode, 'ECIF');
    assert.equal(snap.thisNodeConfig().keyExp, 'ecif-secret-key-1');
    assert.deepEqual(snap.servedApps(), ['ibp_t_echo']);
    assert.equal(snap.kv('color'), 'red');
    assert.deepEqual(snap.ibmsServer, { ip: '127.0.0.1', port });
    assert.equal(existsSync(join(agentHome, 'run', 'ibma.pid')), true);
  });

  it("ibma - its heartbeat makes it a live 'ibma' session of the registry, with its host, pid and view version", async () => {
    type Row = { role: string; node: string; host: string; pid: number; viewVersion?: number };
    let rows: Row[] = [];
    const hb = (): Row | undefined => rows.find((r) => r.role === 'ibma' && r.node === 'ECIF');
    await waitFor(() => {
      rows = JSON.parse(ibms('-s', 'sessions', '--json')) as Row[];
      return hb() !== undefined;
    }, 'an ibma session', 15_000);
    assert.equal(hb()!.host, '127.0.0.1:18001');
    assert.equal(hb()!.pid, ibmaProc.child.pid);
    assert.equal(typeof hb()!.viewVersion, 'number');
  });

  it('ibma - a client-only host (negative port) is registered through the ibms CLI and an agent started with --host IP:-PORT reports it', async () => {
    ibms('-a', 'add_node_host', '--node', 'CORE', '--ip', '127.0.0.1', '--port', '-18002');
    assert.match(ibms('-s', 'nodes'), /CORE\s.*127\.0\.0\.1:-18002/);
    ibms('-a', 'distribute_config');
    const coreHome = join(base, 'core');
    run(IBMA, ['-a', 'init', '--this-node', 'CORE', '--ibms', `127.0.0.1:${port}`, '--home', coreHome]);
    copyFileSync(join(regHome, 'keys', 'CORE.key'), join(coreHome, 'keys', 'CORE.key'));
    const core = await startForeground(IBMA, ['-a', 'start', '--foreground', '--home', coreHome, '--host', '127.0.0.1:-18002'], /^ibma ready node=CORE /);
    try {
      type Row = { role: string; node: string; host: string };
      let rows: Row[] = [];
      await waitFor(() => {
        rows = JSON.parse(ibms('-s', 'sessions', '--json')) as Row[];
        return rows.some((r) => r.role === 'ibma' && r.node === 'CORE');
      }, 'the CORE agent session', 15_000);
      assert.equal(rows.find((r) => r.role === 'ibma' && r.node === 'CORE')!.host, '127.0.0.1:-18002');
    } finally {
      killGroup(core.child, 'SIGTERM');
      await core.exited;
    }
  });

  it('ibma - -s this_node, nodes, apps and nodes_kv print the local replica as tables', () => {
    assert.match(ibma('-s', 'this_node'), /this_node\s+ECIF/);
    assert.match(ibma('-s', 'nodes'), /^node\s+invalid\s+ip\s+port[\s\S]*\nECIF\s+0\s+127\.0\.0\.1\s+18001/);
    assert.match(ibma('-s', 'apps'), /ibp_t_echo\s+echo\s+echo\.mjs\s+30/);
    assert.match(ibma('-s', 'nodes_kv'), /ECIF\s+color\s+red/);
    assert.doesNotMatch(ibma('-s', 'nodes'), /ecif-secret-key-1/, 'keys are never printed');
  });

  it('ibma - a distribute reaches the agent within its long-poll, packages included', async () => {
    const before = readIndexVersion(agent.replica)!;
    ibms('-a', 'set_node_kv', '--node', 'ECIF', '--key', 'color', '--value', 'green');
    writeFileSync(join(regHome, 'so', 'echo.mjs'), PKG_V2);
    ibms('-a', 'update_app', '--app', 'ibp_t_echo');
    ibms('-a', 'distribute_config');
    const ms = await waitFor(() => agentKv('color') === 'green', 'the new KV value in the replica', 10_000);
    await waitFor(() => readFileSync(join(agentHome, 'so', 'echo.mjs'), 'utf8') === PKG_V2, 'the new package', 10_000);
    assert.ok(readIndexVersion(agent.replica)! > before);
    assert.ok(!existsSync(join(agentHome, 'so', 'echo.mjs.ibpupd')), 'no update-period file left');
    process.stdout.write(`# distribute → agent replica: ${ms} ms\n`);
  });

  it('ibma - with the registry killed the agent keeps its snapshot, and resyncs soon after the registry returns', async () => {
    killGroup(registry.child, 'SIGKILL');
    await registry.exited;
    const version = readIndexVersion(agent.replica);
    // The agent notices (its long-poll breaks) and keeps retrying; its replica stays as it was.
    const workerLog = join(agentHome, 'log', 'ibma_ECIF_worker.log');
    await waitFor(() => existsSync(workerLog) && readFileSync(workerLog, 'utf8').includes('config sync failed'), 'the agent to notice the registry is gone');
    assert.equal(ibmaProc.child.exitCode, null, 'the agent is still running');
    assert.equal(readIndexVersion(agent.replica), version);
    assert.equal(agentKv('color'), 'green');

    registry = await startRegistry();
    const back = Date.now();
    ibms('-a', 'set_node_kv', '--node', 'ECIF', '--key', 'color', '--value', 'blue');
    ibms('-a', 'distribute_config');
    await waitFor(() => agentKv('color') === 'blue', 'the agent to resync with the returned registry', 20_000);
    process.stdout.write(`# registry back → agent in sync: ${Date.now() - back} ms (retry cap 2 s)\n`);
  });

  it('ibma - restarted while the registry is down, it is ready at once from its local snapshot and syncs later', async () => {
    killGroup(ibmaProc.child, 'SIGTERM');
    assert.deepEqual(await ibmaProc.exited, { code: 0, signal: null });
    assert.equal(existsSync(join(agentHome, 'run', 'ibma.pid')), false, 'the pid file is removed on exit');
    killGroup(registry.child, 'SIGKILL');
    await registry.exited;
    const local = readIndexVersion(agent.replica)!;
    ibmaProc = await startAgent();
    assert.equal(ibmaProc.line, `ibma ready node=ECIF version=${local} source=local`);
    registry = await startRegistry();
    ibms('-a', 'set_node_kv', '--node', 'ECIF', '--key', 'color', '--value', 'violet');
    ibms('-a', 'distribute_config');
    await waitFor(() => agentKv('color') === 'violet', 'the sync after the registry started', 20_000);
  });

  it('ibma - SIGUSR2 is a clean stop: the config space run/ibma/ is removed and the agent exits', async () => {
    assert.ok(existsSync(agent.replica));
    killGroup(ibmaProc.child, 'SIGUSR2');
    assert.deepEqual(await ibmaProc.exited, { code: 0, signal: null });
    assert.equal(existsSync(agent.replica), false);
    assert.equal(existsSync(join(agentHome, 'run', 'ibma.pid')), false);
  });

  it('ibma - -a start daemonises, a second start is refused, -a stop stops it; start_cleanly starts from an empty config space', () => {
    const started = ibma('-a', 'start_cleanly', '--host', '127.0.0.1:18001');
    assert.match(started, /^ibma node=ECIF started \(pid \d+\): snapshot 1, registry view \d+/);
    const pid = Number(readFileSync(join(agentHome, 'run', 'ibma.pid'), 'utf8'));
    assert.ok(pid > 0);
    const again = spawnSync(process.execPath, [IBMA, '-a', 'start', '--home', agentHome], { encoding: 'utf8' });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /IBP_ERR_AGENT_ALREADY_RUNNING/);
    assert.match(ibma('-a', 'stop'), /ibma stopped/);
    assert.throws(() => process.kill(pid, 0));
    const none = spawnSync(process.execPath, [IBMA, '-a', 'stop', '--home', agentHome], { encoding: 'utf8' });
    assert.match(none.stderr, /IBP_ERR_AGENT_NOT_RUNNING/);
  });

  it('ibma - a missing private key stops the start with IBP_ERR_AGENT_KEY', () => {
    rmSync(join(agentHome, 'keys', 'ECIF.key'));
    const r = spawnSync(process.execPath, [IBMA, '-a', 'start', '--foreground', '--home', agentHome], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /IBP_ERR_AGENT_KEY/);
    assert.match(r.stderr, /ibpgenrsakeys ECIF/);
  });
});
