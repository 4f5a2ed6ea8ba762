/**
 * Balancing and failover (docs/client.md): two platforms of one node with `ibas.server.max_conn_tx` 3, a real
 * client in this process and real clients in child processes sharing the home's load table.
 *
 * - loads one process observed steer another process's next connect; a torn slot reads as unknown;
 * - a host suspended by one process is skipped by another, until the suspension is lifted;
 * - a call whose worker is killed after its request left is never made again: it ran once and is in doubt;
 * - a long connection moved on by max_conn_tx reconnects without an error, so its calls spread;
 * - invalid nodes are refused with a coded error and invalid hosts are never connected to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { basename, join } from 'node:path';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { LoadTable } from '../../../src/agent/index.js';
import { stringHashA, stringHashB } from '../../../src/agent/hash.js';
import { LOAD_TABLE_HEADER_BYTES, LOAD_TABLE_PROBE, LOAD_TABLE_SLOT_BYTES } from '../../../src/agent/load-table.js';
import { REPO_ROOT, runCliSync, startPlatform, stopPlatform, type ScratchApp } from '../../../src/cli/scratch-cluster.js';
import { Ib2Connection } from '../../../src/protocol/index.js';
import { FIXTURE_APPS, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

/** Records each run (jnlsno, worker pid) in file/held.log and holds until file/<gate> exists. */
const HOLD_APP: ScratchApp = { app: 'ibp_t_hold', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_hold.mjs'), timeout: 30 };
const APPS = [...FIXTURE_APPS, HOLD_APP];
const MAX_CONN_TX = 3;
const clientUrl = new URL('../../../src/client/index.js', import.meta.url).href;

/** Runs `body` in a child node process with `env` (an IbacEnv on `home`) in scope; resolves with its `out`. */
function runClientProcess(home: string, body: string): Promise<unknown[]> {
  const script = `const { IbacEnv } = await import(${JSON.stringify(clientUrl)});
const env = await IbacEnv.create({ home: ${JSON.stringify(home)} });
const out = [];
try {
${body}
} finally {
  await env.close();
}
process.stdout.write(JSON.stringify(out));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(stdout) as unknown[]);
      else reject(new Error(`client process exited ${code ?? signal}: ${stderr}`));
    });
  });
}

/** A TCP listener that only counts the connections it gets (a host the client must never connect to). */
async function countingListener(): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    count: () => n,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('balancing and failover - two hosts of one node', () => {
  let c: TestCluster;
  let seq = 0;
  const jnl = (what: string): string => `BAL${process.pid}-${what}-${++seq}`;
  const tablePath = (): string => join(c.clientHome, 'run', 'ibma', 'load.table');
  const keyOf = (i: number): string => `${c.serverNode}/127.0.0.1:${c.ports[i]}`;
  const readTable = (key: string) => {
    const t = LoadTable.open(tablePath());
    try {
      return t.read(key);
    } finally {
      t.close();
    }
  };
  /** The runs of ibp_t_hold with `jnlsno` on every host: { host, pid }. */
  const heldRuns = (jnlsno: string): { host: number; pid: number }[] =>
    c.serverHomes.flatMap((home, host) => {
      let text = '';
      try {
        text = readFileSync(join(home, 'file', 'held.log'), 'utf8');
      } catch { /* nothing ran there yet */ }
      return text.split('\n').filter((l) => l.startsWith(`${jnlsno} `)).map((l) => ({ host, pid: Number(l.split(' ')[1]) }));
    });
  const rawCall = async (port: number, app: string, body: object, jnlsno: string): Promise<void> => {
    const conn = await Ib2Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: 10_000, fileDir: join(c.clientHome, 'file') });
    try {
      await conn.call({ clientNode: c.clientNode, app, jnlsno, body: Buffer.from(JSON.stringify(body)), timeoutMs: 30_000 });
    } finally {
      conn.destroy();
    }
  };
  /** Keeps one worker of host `i` busy (a direct connection: no load table involved) until release(). */
  const holdWorker = async (i: number): Promise<{ release: () => Promise<void> }> => {
    const gate = `gate-${process.pid}-${++seq}`;
    const jnlsno = jnl('hold');
    const done = rawCall(c.ports[i]!, 'ibp_t_hold', { gate }, jnlsno);
    await Promise.race([waitFor(() => heldRuns(jnlsno).length === 1, 'the held transaction to start', 20_000), done]);
    return {
      release: async () => {
        writeFileSync(join(c.serverHomes[i]!, 'file', gate), '');
        await done;
      },
    };
  };

  before(async () => {
    c = await startTestCluster({ serverHosts: 2, workers: 2, apps: APPS, start: false });
    for (const [i, home] of c.serverHomes.entries()) {
      const conf = join(home, 'etc', 'ibas.conf');
      const text = readFileSync(conf, 'utf8');
      const server = `"port" : ${c.ports[i]} }`;
      assert.ok(text.includes(server));
      writeFileSync(conf, text.replace(server, `"port" : ${c.ports[i]} , "max_conn_tx" : ${MAX_CONN_TX} }`));
      c.platforms.push(await startPlatform(home));
    }
  });
  after(async () => {
    await c?.close();
  });

  it('loads one client process observed steer another process\'s next connect (the shared load table)', async () => {
    rmSync(tablePath(), { force: true });
    const hold = await holdWorker(0);
    try {
      // Process A: a fresh client, so its first call goes to host 0 (round-robin starts there); it then sees
      // host 0 fully busy (the held worker and the one answering) and host 1 half busy.
      const seen = new Map(await runClientProcess(c.clientHome, `
const seen = new Map();
for (let i = 0; i < 10 && seen.size < 2; i++) { const r = await env.call('ibp_test_echo', 'a'); seen.set(r.host.port, r.load); }
out.push(...seen.entries());`) as [number, { busy: number; total: number }][]);
      assert.deepEqual(seen.get(c.ports[0]!), { busy: 2, total: 2 });
      assert.deepEqual(seen.get(c.ports[1]!), { busy: 1, total: 2 });
      // Process B (this one) never called host 0: what it knows comes from A, through the table.
      assert.equal(readTable(keyOf(0))?.busy, 2);
      const env = await IbacEnv.create({ home: c.clientHome });
      try {
        const ports: number[] = [];
        for (let i = 0; i < 6; i++) ports.push((await env.call('ibp_test_echo', `b${i}`)).host.port);
        assert.deepEqual(ports, Array(6).fill(c.ports[1]), 'every call went to the host A saw less loaded');
      } finally {
        await env.close();
      }
    } finally {
      await hold.release();
    }
  });

  it('a torn slot in the load table reads as unknown: never a wrong load or suspension, and the next response rewrites it whole', async () => {
    // From the test above: host 0 at 2/2, host 1 at 1/2. Tear host 0's slot the way a writer killed in the middle
    // of its pwrite would: the first 24 bytes of a new image ("suspended until 2100") over the old slot.
    const key = keyOf(0);
    assert.equal(readTable(key)?.busy, 2);
    const a = stringHashA(key);
    const b = stringHashB(key);
    const t = LoadTable.open(tablePath());
    const base = LOAD_TABLE_HEADER_BYTES + (a % t.slots) * LOAD_TABLE_SLOT_BYTES;
    t.close();
    const fd = openSync(tablePath(), 'r+');
    try {
      const win = Buffer.alloc(LOAD_TABLE_PROBE * LOAD_TABLE_SLOT_BYTES);
      readSync(fd, win, 0, win.length, base);
      let off = -1;
      for (let o = 0; o < win.length; o += LOAD_TABLE_SLOT_BYTES) {
        if (win.readUInt32LE(o) === a && win.readUInt32LE(o + 4) === b) off = o;
      }
      assert.ok(off >= 0, 'host 0 has a slot');
      const torn = Buffer.from(win.subarray(off, off + 24));
      torn.writeUInt32LE(0, 8); // busy
      torn.writeDoubleLE(Date.UTC(2100, 0, 1), 16); // suspended until
      writeSync(fd, torn, 0, torn.length, base + off);
    } finally {
      closeSync(fd);
    }
    assert.equal(readTable(key), undefined, 'the torn slot reads as unknown');
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      // Unknown counts as idle (0 < host 1's 1/2): host 0 is chosen — neither suspended nor at its old 2/2.
      const r = await env.call('ibp_test_echo', 'torn');
      assert.equal(r.host.port, c.ports[0]);
    } finally {
      await env.close();
    }
    const whole = readTable(key);
    assert.equal(whole?.busy, 1);
    assert.equal(whole?.total, 2);
    assert.equal(whole?.suspendedUntilMs, 0);
  });

  it('a host one process found down is skipped by every other local process until retry_connect_timeval passes', async () => {
    rmSync(tablePath(), { force: true });
    await stopPlatform(c.platforms[0]!);
    try {
      // Process A: its first connect goes to host 0, is refused, suspends it, and the call moves on to host 1.
      const [port] = await runClientProcess(c.clientHome, `out.push((await env.call('ibp_test_echo', 'down')).host.port);`);
      assert.equal(port, c.ports[1]);
    } finally {
      c.platforms[0] = await startPlatform(c.serverHomes[0]!);
    }
    const until = readTable(keyOf(0))?.suspendedUntilMs ?? 0;
    assert.ok(until > Date.now() + 30_000, `suspended for retry_connect_timeval (60 s), got ${until - Date.now()} ms`);
    await rawCall(c.ports[0]!, 'ibp_test_echo', {}, jnl('up')); // host 0 serves again
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      // Process B (this one) has never failed to connect anywhere: it skips host 0 on A's word alone.
      for (let i = 0; i < 6; i++) assert.equal((await env.call('ibp_test_echo', `s${i}`)).host.port, c.ports[1]);
      const t = LoadTable.open(tablePath());
      t.suspend(keyOf(0), 0); // as if retry_connect_timeval had passed
      t.close();
      assert.equal((await env.call('ibp_test_echo', 'lifted')).host.port, c.ports[0], 'the idle host 0 is chosen again');
    } finally {
      await env.close();
    }
  });

  for (const kind of ['short call', 'long connection'] as const) {
    it(`${kind}: a worker killed after the request left is never called again — it ran once, and the call is in doubt`, async () => {
      const env = await IbacEnv.create({ home: c.clientHome });
      try {
        const conn = kind === 'long connection' ? await env.connect(c.serverNode) : undefined;
        if (conn) await conn.call('ibp_test_echo', 'first'); // the held call is then a pipelined one
        const jnlsno = jnl('kill');
        const body = { gate: 'never', maxMs: 25_000 };
        const call = (conn ? conn.call('ibp_t_hold', body, { jnlsno }) : env.call('ibp_t_hold', body, { jnlsno }))
          .then(() => undefined, (e: unknown) => e);
        await waitFor(() => heldRuns(jnlsno).length === 1, 'the transaction to start', 20_000);
        process.kill(heldRuns(jnlsno)[0]!.pid, 'SIGKILL');
        const err = await call;
        assert.ok(err instanceof IbpError, `the call failed (got ${String(err)})`);
        assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST', err.message);
        assert.equal(err.commStatus, 'ON_SENDING');
        assert.equal(err.inDoubt, true);
        assert.equal(err.retryable, false);
        assert.equal(env.commStatus, 'ON_SENDING');
        // Both platforms serve again (the killed worker is replaced); the held transaction still ran exactly once.
        for (const port of c.ports) await rawCall(port, 'ibp_t_hold', {}, jnl('after'));
        assert.equal(heldRuns(jnlsno).length, 1, 'ran once, on one host, never re-sent');
        if (conn) {
          assert.equal((await conn.call('ibp_test_echo', 'again')).text(), 'again', 'the long connection reconnects for the next call');
          await conn.close();
        }
      } finally {
        await env.close();
      }
    });
  }

  it(`a long connection moved on after ${MAX_CONN_TX} transactions (max_conn_tx) reconnects without an error, so its calls spread`, async () => {
    rmSync(tablePath(), { force: true });
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      const conn = await env.connect(c.serverNode);
      const ports: number[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await conn.call('ibp_test_echo', `l${i}`);
        assert.equal(r.text(), `l${i}`);
        ports.push(r.host.port);
      }
      assert.equal(env.commStatus, 'OK');
      assert.deepEqual([...new Set(ports)].sort(), [...c.ports].sort(), `calls on both hosts: ${ports.join(',')}`);
      for (let i = 0; i + MAX_CONN_TX < ports.length; i += MAX_CONN_TX) {
        // A connection serves at most MAX_CONN_TX calls, so a switch can only happen at those boundaries.
        assert.ok(ports.slice(i, i + MAX_CONN_TX).every((p) => p === ports[i]), `calls ${i}..${i + MAX_CONN_TX - 1} share one connection`);
      }
      await conn.close();
    } finally {
      await env.close();
    }
  });

  // Last: rewrites the client's view of the cluster.
  it('an invalid node is refused with a coded error and an invalid host is never connected to', async () => {
    // Three listeners that count connections (a host may belong to one node only).
    const decoys = [await countingListener(), await countingListener(), await countingListener()];
    const [d0, d1, d2] = decoys.map((d) => d.port) as [number, number, number];
    try {
      const host = (port: number, invalid = false): string => `{ "ip" : "127.0.0.1" , "port" : ${port}${invalid ? ' , "invalid" : "1"' : ''} }`;
      const nodes = [
        `{ "node" : "${c.serverNode}" , "invalid" : "0" , "hosts" : [ ${host(d0, true)} , ${host(c.ports[1]!)} ] }`,
        `{ "node" : "OFFN" , "invalid" : "1" , "hosts" : [ ${host(d1)} ] }`,
        `{ "node" : "NOHOST" , "invalid" : "0" , "hosts" : [ ${host(d2, true)} ] }`,
        `{ "node" : "${c.clientNode}" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.1" , "port" : -10601 } ] }`,
      ];
      const apps = APPS.map((a) => `{ "app" : "${a.app}" , "desc" : "x" , "bin" : "${basename(a.source)}" , "timeout" : "${a.timeout ?? 60}" , "timeout2" : "0" , "invalid" : "0" , "server_node" : "${c.serverNode}" }`);
      const projects = [c.serverNode, 'OFFN', 'NOHOST'].map((n, i) => `{ "project" : "p${i}" , "server_nodes" : "${n}" , "client_nodes" : "${c.clientNode}" , "apps" : "${APPS.map((a) => a.app).join(' ')}" }`);
      const etc = join(c.clientHome, 'etc');
      writeFileSync(join(etc, 'ibp_nodes.conf'), `{ "nodes" : [\n  ${nodes.join(' ,\n  ')}\n] }\n`);
      writeFileSync(join(etc, 'ibp_apps.conf'), `{ "apps" : [\n  ${apps.join(' ,\n  ')}\n] }\n`);
      writeFileSync(join(etc, 'ibp_projects.conf'), `{ "projects" : [\n  ${projects.join(' ,\n  ')}\n] }\n`);
      runCliSync('ibp', ['local-config', '--home', c.clientHome], c.clientHome);
      rmSync(tablePath(), { force: true });
      const env = await IbacEnv.create({ home: c.clientHome });
      try {
        // The invalid host comes first in the list and answers TCP: round-robin would try it every other call.
        for (let i = 0; i < 6; i++) assert.equal((await env.call('ibp_test_echo', `v${i}`)).host.port, c.ports[1]);
        const fail = (node: string) => env.call('ibp_test_echo', 'x', { node }).then(() => assert.fail(`a call to ${node} succeeded`), (e: unknown) => e);
        const off = await fail('OFFN');
        assert.ok(off instanceof IbpError);
        assert.equal(off.code, 'IBP_ERR_CLIENT_NODE_INVALID');
        assert.equal(off.commStatus, 'NOT_SENT');
        assert.equal(off.retryable, true);
        const none = await fail('NOHOST');
        assert.ok(none instanceof IbpError);
        assert.equal(none.code, 'IBP_ERR_CLIENT_NO_HOST');
        assert.equal(none.commStatus, 'NOT_SENT');
        const conn = await env.connect('OFFN');
        const viaConn = await conn.call('ibp_test_echo', 'x').then(() => undefined, (e: unknown) => e);
        assert.ok(viaConn instanceof IbpError && viaConn.code === 'IBP_ERR_CLIENT_NODE_INVALID');
        await conn.close();
      } finally {
        await env.close();
      }
      assert.deepEqual(decoys.map((d) => d.count()), [0, 0, 0], 'no connection was ever made to an invalid host or a host of an invalid node');
    } finally {
      await Promise.all(decoys.map((d) => d.close()));
    }
  });
});
