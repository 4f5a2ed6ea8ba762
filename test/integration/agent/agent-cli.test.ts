/**
 * `ibma` as a process without a registry: init, the -s dumps, readiness from the local snapshot while the
 * registry is unreachable, daemon start/stop, signals. (With the real registry: agent-registry.test.ts.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readIndexVersion, writeSnapshot } from '../../../src/agent/index.js';
import { ibpHome } from '../../../src/core/home.js';

const IBMA = fileURLToPath(new URL('../../../src/cli/ibma.js', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'ibp-ibma-cli-'));
const home = ibpHome(join(base, 'ecif'));
const pidPath = join(home.run, 'ibma.pid');
const children = new Set<ChildProcess>();

function ibma(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [IBMA, ...args, '--home', home.root], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A loopback port nothing listens on: the registry is "unreachable" (connection refused). */
async function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startForeground(): Promise<{ child: ChildProcess; line: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [IBMA, '-a', 'start', '--foreground', '--home', home.root], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (children.delete(child), resolve(code))));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no readiness line\nstdout: ${out}\nstderr: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const l = out.split('\n').find((x) => x.startsWith('ibma ready '));
      if (l !== undefined) {
        clearTimeout(timer);
        resolve(l);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ibma exited ${code} before it was ready\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return { child, line, exited };
}

describe('ibma command line (registry unreachable)', () => {
  let localVersion = 0;

  before(async () => {
    const port = await deadPort();
    const init = ibma('-a', 'init', '--this-node', 'ECIF', '--ibms', `127.0.0.1:${port}`);
    assert.equal(init.status, 0, init.stderr);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(home.keys, 'ECIF.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    localVersion = writeSnapshot(home.replica, {
      thisNode: 'ECIF',
      ibmsServer: { ip: '127.0.0.1', port },
      retryConnectTimevalSec: 60,
      connectingTimeoutSec: 10,
      minCompressSize: 16,
      nodes: [
        { name: 'ECIF', invalid: false, hosts: [{ ip: '127.0.0.2', port: 18001, clientOnly: false, invalid: false }], keyExp: 'secret-ecif', newKeyEnableAt: 0, oldKeyDisableAt: 0, kv: { color: 'red', 'db.url': 'pg://x' } },
        { name: 'CRM', invalid: true, hosts: [{ ip: '127.0.0.4', port: 18001, clientOnly: true, invalid: false }], keyExp: '', newKeyEnableAt: 0, oldKeyDisableAt: 0, kv: {} },
      ],
      apps: [{ app: 'ecif_query', desc: 'query a customer', bin: 'ecif_query.mjs', timeout: 30, timeout2: 40, serverNode: '', invalid: false }],
      servedApps: ['ecif_query'],
    });
  });

  after(async () => {
    const pid = existsSync(pidPath) ? Number.parseInt(readFileSync(pidPath, 'utf8'), 10) : 0;
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const c of [...children]) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(base, { recursive: true, force: true });
  });

  it('ibma - -a init writes etc/ibma.conf for the node and the registry address, and the home directories', () => {
    const conf = readFileSync(join(home.etc, 'ibma.conf'), 'utf8');
    assert.match(conf, /"this_node" : "ECIF"/);
    for (const d of [home.log, home.so, home.keys, home.replica]) assert.ok(existsSync(d), d);
    const again = ibma('-a', 'init', '--this-node', 'ECIF');
    assert.match(again.stdout, /already exists, left as it is/);
  });

  it('ibma - -s prints the local replica as aligned tables, never the keys', () => {
    const thisNode = ibma('-s', 'this_node');
    assert.equal(thisNode.status, 0, thisNode.stderr);
    assert.match(thisNode.stdout, /^item\s+value\n/);
    assert.match(thisNode.stdout, /\nthis_node\s+ECIF\n/);
    assert.match(thisNode.stdout, /\nserved_apps\s+ecif_query\n/);
    const nodes = ibma('-s', 'nodes').stdout.split('\n');
    assert.match(nodes[0]!, /^node\s+invalid\s+ip\s+port\s+host_invalid\s+key/);
    assert.match(nodes[1]!, /^ECIF\s+0\s+127\.0\.0\.2\s+18001\s+0\s+set/);
    assert.match(nodes[2]!, /^CRM\s+1\s+127\.0\.0\.4\s+-18001\s+0\s+-/);
    assert.equal(nodes[1]!.indexOf('127.0.0.2'), nodes[2]!.indexOf('127.0.0.4'), 'columns are aligned');
    assert.doesNotMatch(ibma('-s', 'nodes').stdout, /secret-ecif/);
    assert.match(ibma('-s', 'apps').stdout, /\necif_query\s+query a customer\s+ecif_query\.mjs\s+30\s+40\s+-\s+0\s+yes/);
    const kv = ibma('-s', 'nodes_kv').stdout;
    assert.match(kv, /\nECIF\s+color\s+red\n/);
    assert.match(kv, /\nECIF\s+db\.url\s+pg:\/\/x/);
    const bad = ibma('-s', 'projects');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /IBP_ERR_USAGE/);
  });

  it('ibma - with the registry unreachable it is ready at once from the local snapshot; SIGUSR1 keeps it running; SIGTERM stops it', async () => {
    const a = await startForeground();
    assert.equal(a.line, `ibma ready node=ECIF version=${localVersion} source=local`);
    assert.equal(Number(readFileSync(pidPath, 'utf8')), a.child.pid);
    process.kill(a.child.pid!, 'SIGUSR1');
    const log = join(home.log, 'ibma_ECIF_worker.log');
    const t0 = Date.now();
    while (!(existsSync(log) && readFileSync(log, 'utf8').includes('config sync failed'))) {
      assert.ok(Date.now() - t0 < 15_000, 'the worker log records the failed sync');
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(a.child.exitCode, null, 'still running after SIGUSR1');
    assert.equal(readIndexVersion(home.replica), localVersion, 'the snapshot is kept');
    process.kill(a.child.pid!, 'SIGTERM');
    assert.equal(await a.exited, 0);
    assert.equal(existsSync(pidPath), false);
    assert.equal(readIndexVersion(home.replica), localVersion, 'SIGTERM leaves the config space');
  });

  it('ibma - -a start daemonises and returns once ready; a second start is refused; -a stop stops it', async () => {
    const r = ibma('-a', 'start');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ibma node=ECIF started \\(pid (\\d+)\\): snapshot ${localVersion} from the local replica`));
    const pid = Number(readFileSync(pidPath, 'utf8'));
    process.kill(pid, 0);
    const again = ibma('-a', 'start');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /IBP_ERR_AGENT_ALREADY_RUNNING/);
    const stop = ibma('-a', 'stop');
    assert.equal(stop.status, 0, stop.stderr);
    assert.match(stop.stdout, /ibma stopped/);
    assert.throws(() => process.kill(pid, 0));
    const none = ibma('-a', 'stop');
    assert.equal(none.status, 1);
    assert.match(none.stderr, /IBP_ERR_AGENT_NOT_RUNNING/);
  });

  it('ibma - SIGUSR2 is a clean stop that removes run/ibma/', async () => {
    const a = await startForeground();
    assert.ok(existsSync(home.replica));
    process.kill(a.child.pid!, 'SIGUSR2');
    assert.equal(await a.exited, 0);
    assert.equal(existsSync(home.replica), false);
    assert.equal(existsSync(pidPath), false);
  });

  it('ibma - without a snapshot and without a registry, -a start says it is still waiting after --wait', () => {
    const r = ibma('-a', 'start', '--wait', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /started \(pid \d+\) but not ready after 1 s/);
    assert.equal(ibma('-a', 'stop').status, 0);
  });

  it('ibma - a missing private key stops the start with IBP_ERR_AGENT_KEY naming ibpgenrsakeys', () => {
    rmSync(join(home.keys, 'ECIF.key'));
    const r = ibma('-a', 'start', '--foreground');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /IBP_ERR_AGENT_KEY/);
    assert.match(r.stderr, /ibpgenrsakeys ECIF/);
    const d = ibma('-a', 'start');
    assert.equal(d.status, 1);
    assert.match(d.stderr, /IBP_ERR_AGENT_KEY/);
  });

  it('ibma - --host takes a negative port (a client-only host); a port of 0 or beyond 65535 either way is a usage error', () => {
    // the key is gone (test above): a --host that parses gets as far as the key
    const neg = ibma('-a', 'start', '--foreground', '--host', '127.0.0.1:-18001');
    assert.equal(neg.status, 1, neg.stderr);
    assert.match(neg.stderr, /IBP_ERR_AGENT_KEY/);
    for (const bad of ['127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:-65536', '127.0.0.1:-0', '127.0.0.1', ':18001']) {
      const r = ibma('-a', 'start', '--foreground', '--host', bad);
      assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /^IBP_ERR_USAGE: --host /, bad);
    }
    const init = ibma('-a', 'init', '--ibms', '127.0.0.1:-16001');
    assert.equal(init.status, 2, 'the registry address is never client-only');
    assert.match(init.stderr, /^IBP_ERR_USAGE: --ibms /);
  });
});
