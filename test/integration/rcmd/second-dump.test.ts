import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFilesToSecondDump, RcmdClient, type SecondDumpLog } from '../../../src/rcmd/index.js';
import { auditRecords, makeAgentHome, startAgent, waitFor, type RunningAgent } from './harness.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-rcmd-dump-'));
/** The registry's host: its own home and agent, the saved config files, and a copy of B's secret. */
const homeA = join(base, 'registry-host');
/** The host named by second_config_dump. */
const homeB = join(base, 'standby-host');
const agents: RunningAgent[] = [];
const CONFS = ['ibp_nodes.conf', 'ibp_apps.conf', 'ibp_projects.conf'];
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function recordingLog(): SecondDumpLog & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  return { lines, info: (_o, msg) => lines.push({ level: 'info', msg }), warn: (_o, msg) => lines.push({ level: 'warn', msg }) };
}

/** A port nothing listens on (bound and released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const files = () => CONFS.map((n) => ({ local: join(homeA, 'etc', n), remote: `etc/${n}` }));
const secretPath = join(homeA, 'keys', 'standby-ibcmd.secret');

before(async () => {
  makeAgentHome(homeA);
  makeAgentHome(homeB);
  for (const [i, n] of CONFS.entries()) writeFileSync(join(homeA, 'etc', n), `// saved by ibms, file ${i}\n{ "x" : ${i} , "pad" : "${'z'.repeat(1000 * (i + 1))}" }\n`);
  copyFileSync(join(homeB, 'keys', 'ibcmd.secret'), secretPath);
  chmodSync(secretPath, 0o600);
  agents.push(await startAgent(homeA), await startAgent(homeB));
});
after(async () => {
  for (const a of agents) await a.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('second config dump (ibms.misc.second_config_dump)', () => {
  test('second dump - the three saved files arrive on the other host, verified, in one attempt', async () => {
    const b = agents[1]!;
    const log = recordingLog();
    const r = await copyFilesToSecondDump({ address: b.address, secretPath, files: files() }, { log });
    assert.equal(r.ok, true, JSON.stringify(r.failed));
    assert.equal(r.attempts, 1);
    assert.equal(r.address, b.address);
    assert.deepEqual(r.failed, []);
    assert.equal(r.copied.length, 3);
    for (const n of CONFS) {
      const src = readFileSync(join(homeA, 'etc', n));
      assert.deepEqual(readFileSync(join(homeB, 'etc', n)), src, n);
      const c = r.copied.find((x) => x.remote === `etc/${n}`);
      assert.equal(c?.sha256, sha(src));
      assert.equal(c?.size, src.length);
    }
    const recs = auditRecords(homeB).filter((x) => x.action === 'putfile' && x.verdict === 'allowed');
    assert.deepEqual(CONFS.map((n) => recs.some((x) => x.file === `etc/${n}`)), [true, true, true]);
    assert.deepEqual(log.lines, [{ level: 'info', msg: 'second config dump copied' }]);
    // and they can be read back through the other host's agent
    const c = new RcmdClient({ address: b.address, secretPath });
    try {
      assert.deepEqual(await c.getFile('etc/ibp_apps.conf'), readFileSync(join(homeA, 'etc', 'ibp_apps.conf')));
    } finally {
      await c.close();
    }
  });

  test('second dump - a target that is down is retried with backoff and reported; the promise never rejects', async () => {
    const port = await freePort();
    const log = recordingLog();
    const t0 = Date.now();
    const r = await copyFilesToSecondDump({ address: `127.0.0.1:${port}`, secretPath, files: files() }, { log, retries: 2, backoffMs: 50 });
    assert.equal(r.ok, false);
    assert.equal(r.attempts, 3);
    assert.equal(r.copied.length, 0);
    assert.equal(r.failed.length, 3);
    for (const f of r.failed) assert.equal(f.error.code, 'IBP_ERR_RCMD_CONNECT');
    assert.match(r.failed[0]!.error.message, /ECONNREFUSED/);
    assert.ok(Date.now() - t0 >= 150, 'backoff 50 + 100 ms');
    assert.deepEqual(log.lines.map((l) => `${l.level} ${l.msg}`), [
      'warn second config dump: retrying', 'warn second config dump: retrying', 'warn second config dump failed',
    ]);
  });

  test('second dump - the save path is not held up: the call returns at once and copies in the background', async () => {
    const port = await freePort();
    let settled = false;
    const p = copyFilesToSecondDump({ address: `127.0.0.1:${port}`, secretPath, files: files() }, { retries: 1, backoffMs: 20 })
      .then((r) => { settled = true; return r; });
    assert.equal(settled, false, 'nothing is awaited before the caller continues');
    assert.equal((await p).ok, false);
  });

  test('second dump - a target that comes back during the retries gets the files', async () => {
    const port = await freePort();
    const homeC = join(base, 'late-host');
    makeAgentHome(homeC, { port });
    const secretC = join(homeA, 'keys', 'late-ibcmd.secret');
    copyFileSync(join(homeC, 'keys', 'ibcmd.secret'), secretC);
    chmodSync(secretC, 0o600);
    const log = recordingLog();
    const p = copyFilesToSecondDump({ address: `127.0.0.1:${port}`, secretPath: secretC, files: files() }, { log, retries: 8, backoffMs: 200, maxBackoffMs: 1000 });
    await waitFor(() => log.lines.some((l) => l.msg === 'second config dump: retrying'), 'a first failed attempt');
    agents.push(await startAgent(homeC));
    const r = await p;
    assert.equal(r.ok, true, JSON.stringify(r.failed));
    assert.ok(r.attempts >= 2);
    for (const n of CONFS) assert.deepEqual(readFileSync(join(homeC, 'etc', n)), readFileSync(join(homeA, 'etc', n)));
  });

  test('second dump - a wrong secret or a refused path is reported without pointless retries', async () => {
    const b = agents[1]!;
    const r = await copyFilesToSecondDump({ address: b.address, secret: 'x'.repeat(64), files: files() }, { retries: 3, backoffMs: 10 });
    assert.equal(r.ok, false);
    assert.equal(r.attempts, 1);
    assert.ok(r.failed.every((f) => f.error.code === 'IBP_ERR_RCMD_AUTH_FAILED'));
    const p = await copyFilesToSecondDump({ address: b.address, secretPath, files: [{ local: join(homeA, 'etc', 'ibp_nodes.conf'), remote: '../outside.conf' }] }, { retries: 3, backoffMs: 10 });
    assert.equal(p.attempts, 1);
    assert.equal(p.failed[0]?.error.code, 'IBP_ERR_RCMD_PATH_REFUSED');
  });

  test('second dump - bad input (no address, missing local file, no secret) is reported, never thrown', async () => {
    const b = agents[1]!;
    const noAddr = await copyFilesToSecondDump({ address: 'nonsense', secretPath, files: files() }, { retries: 2, backoffMs: 10 });
    assert.equal(noAddr.ok, false);
    assert.ok(noAddr.failed.length === 3 && noAddr.failed.every((f) => f.error.code === 'IBP_ERR_USAGE'));
    const missing = await copyFilesToSecondDump({ address: b.address, secretPath, files: [{ local: join(base, 'none.conf'), remote: 'etc/none.conf' }, files()[0]!] });
    assert.equal(missing.ok, false);
    assert.equal(missing.copied.length, 1, 'the files that exist are still copied');
    assert.equal(missing.failed[0]?.error.code, 'IBP_ERR_CONFIG_READ');
    const noSecret = await copyFilesToSecondDump({ address: b.address, files: files() });
    assert.equal(noSecret.ok, false);
    assert.ok(noSecret.failed.every((f) => f.error.code === 'IBP_ERR_RCMD_SECRET'));
    const garbage = await copyFilesToSecondDump(undefined as never);
    assert.equal(garbage.ok, false);
  });
});
