import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/core/log.js';
import { parseIbcmdConf } from '../../../src/core/config/index.js';
import { createSecretFile, RcmdClient, RcmdServer, resolveRcmdSettings } from '../../../src/rcmd/index.js';
import { auditRecords, waitFor } from './harness.js';

const home = mkdtempSync(join(tmpdir(), 'ibp-rcmd-limits-'));
const secretPath = join(home, 'keys', 'ibcmd.secret');
const log = createLogger({ homeRoot: home, output: 'stderr', level: 'FATAL', name: 'ibcmd-test' });
let server: RcmdServer;
let address: string;
const clients: RcmdClient[] = [];
const client = (): RcmdClient => {
  const c = new RcmdClient({ address, secretPath });
  clients.push(c);
  return c;
};

before(async () => {
  createSecretFile(secretPath);
  const cfg = parseIbcmdConf(`{ "ibcmd" : {
    "server" : { "ip" : "127.0.0.1" , "port" : 0 , "max_connections" : 2 , "auth_timeout" : 0.3 , "idle_timeout" : 0.5 } ,
    "exec" : { "path" : ${JSON.stringify(`${dirname(process.execPath)}:/usr/bin:/bin`)} , "max_concurrent" : 1 ,
               "whitelist" : [ "sleep *" , "echo **" ] } } }`, 'limits.conf');
  server = new RcmdServer({ settings: resolveRcmdSettings(cfg, home, join(home, 'etc', 'ibcmd.conf')), log });
  const a = await server.listen();
  address = `${a.ip}:${a.port}`;
});
after(async () => {
  for (const c of clients) c.destroy();
  server.destroy();
  await server.close(0);
  rmSync(home, { recursive: true, force: true });
});

describe('ibcmd agent - limits', () => {
  test('limits - a second command while max_concurrent run is refused BUSY (retryable) and not run', async () => {
    const a = client();
    const b = client();
    const slow = a.execCommand('sleep 1');
    await waitFor(() => server.runningCommands > 0, 'the first command to start');
    const err = await b.execCommand('echo second').catch((e: unknown) => e);
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_RCMD_BUSY');
    assert.equal(err.retryable, true);
    assert.equal((await slow).exitCode, 0);
    assert.equal((await b.execCommand('echo now')).stdout.toString(), 'now\n');
    await a.close();
    await b.close();
  });

  test('limits - a connection past max_connections is refused BUSY before authentication', async () => {
    await waitFor(() => server.connections === 0, 'the earlier connections to be gone');
    const a = client();
    const b = client();
    await a.execCommand('echo a');
    await b.execCommand('echo b');
    const err = await client().execCommand('echo c').catch((e: unknown) => e);
    assert.ok(err instanceof IbpError && err.code === 'IBP_ERR_RCMD_BUSY', String(err));
    assert.ok(auditRecords(home).some((r) => r.action === 'auth' && r.code === 'IBP_ERR_RCMD_BUSY'));
    await a.close();
    await b.close();
  });

  test('limits - an idle connection is closed after idle_timeout; the client reconnects on its next request', async () => {
    await waitFor(() => server.connections === 0, 'the earlier connections to be gone');
    const c = client();
    await c.execCommand('echo first');
    const before = auditRecords(home).filter((r) => r.cmd === 'echo first').at(-1)!.peer;
    await waitFor(() => server.connections === 0, 'the idle connection to be closed', 5000);
    const r = await c.execCommand('echo second');
    assert.equal(r.stdout.toString(), 'second\n');
    const after = auditRecords(home).filter((x) => x.cmd === 'echo second').at(-1)!.peer;
    assert.notEqual(after, before, 'a new connection (another source port)');
    await c.close();
  });

  test('limits - a peer that never authenticates is closed after auth_timeout and audited', async () => {
    const sock = connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) });
    sock.resume();
    const t0 = Date.now();
    await new Promise<void>((r) => sock.once('close', () => r()));
    assert.ok(Date.now() - t0 < 5000);
    const lines = readFileSync(join(home, 'log', 'ibcmd_audit.log'), 'utf8');
    assert.match(lines, /"action":"auth","verdict":"refused","reason":"no AUTH frame within 300 ms"/);
  });

  test('limits - close() lets a command in flight finish and answer, and refuses new connections', async () => {
    const c = client();
    const running = c.execCommand('sleep 0.5');
    await waitFor(() => server.runningCommands > 0, 'the command to start');
    const closing = server.close(10_000);
    const late = await client().execCommand('echo late').catch((e: unknown) => e);
    assert.ok(late instanceof IbpError && ['IBP_ERR_RCMD_CONNECT', 'IBP_ERR_RCMD_BUSY'].includes(late.code), String(late));
    assert.equal((await running).exitCode, 0);
    await closing;
    assert.equal(server.state, 'closed');
  });
});
