import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { RcmdClient } from '../../../src/rcmd/index.js';
import { FrameChannel } from '../../../src/rcmd/channel.js';
import { clientProof, FrameSigner, newNonce, PROTOCOL_ID, serverProof, sessionKeys } from '../../../src/rcmd/session-keys.js';
import { encodeHeader, FrameType, parseJsonBody } from '../../../src/rcmd/wire.js';
import { auditRecords, makeAgentHome, startAgent, waitFor, type RunningAgent } from './harness.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-rcmd-it-'));
const home = join(base, 'agent');
let agent: RunningAgent;
let secret: Buffer;
const clients: RcmdClient[] = [];
const client = (o: Partial<ConstructorParameters<typeof RcmdClient>[0]> = {}): RcmdClient => {
  const c = new RcmdClient({ address: agent.address, secretPath: agent.secretPath, ...o });
  clients.push(c);
  return c;
};
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

before(async () => {
  makeAgentHome(home, { timeoutS: 3, maxOutput: 65536, maxFile: 4 * 1024 * 1024 });
  agent = await startAgent(home);
  secret = Buffer.from(readFileSync(agent.secretPath, 'utf8').trim());
});
after(async () => {
  for (const c of clients) c.destroy();
  if (agent) await agent.stop();
  rmSync(base, { recursive: true, force: true });
});

/** A raw connection that has read HELLO: for attacks the client API would never make. */
async function rawConnect(): Promise<{ ch: FrameChannel; ns: Buffer; sock: ReturnType<typeof connect> }> {
  const sock = connect({ host: '127.0.0.1', port: agent.port });
  const ch = new FrameChannel(sock);
  const hello = await ch.next(10_000, 'HELLO');
  assert.equal(hello.type, FrameType.HELLO);
  assert.deepEqual(hello.body.subarray(0, PROTOCOL_ID.length), PROTOCOL_ID);
  return { ch, ns: hello.body.subarray(PROTOCOL_ID.length), sock };
}

function signedFrame(signer: FrameSigner, type: number, body: Buffer): Buffer {
  const header = encodeHeader(type, body.length, true);
  return Buffer.concat([header, body, signer.sign(header, body)]);
}

describe('ibcmd agent - execmd', () => {
  test('execmd - stdout, stderr and the exit code of the remote command come back', async () => {
    const r = await client().execCommand('node fixtures/emit.mjs 7 hello-out hello-err');
    assert.equal(r.exitCode, 7);
    assert.equal(r.stdout.toString(), 'hello-out');
    assert.equal(r.stderr.toString(), 'hello-err');
    assert.equal(r.timedOut, false);
    assert.ok(r.durationMs >= 0);
  });

  test('execmd - one client runs several commands in order on one connection, output streamed as it comes', async () => {
    const c = client();
    const seen: string[] = [];
    const rs = await Promise.all([
      c.execCommand('echo one', { onOutput: (s, b) => seen.push(`${s}:${b.toString().trim()}`) }),
      c.execCommand('node fixtures/emit.mjs 0 two'),
      c.execCommand('node fixtures/emit.mjs 3'),
    ]);
    assert.deepEqual(rs.map((r) => r.exitCode), [0, 0, 3]);
    assert.equal(rs[0]!.stdout.toString(), 'one\n');
    assert.equal(rs[1]!.stdout.toString(), 'two');
    assert.deepEqual(seen, ['stdout:one']);
  });

  test('execmd - the agent kills a command at its time limit (and at a shorter one the client asks for)', async () => {
    const c = client();
    const asked = await c.execCommand('node fixtures/sleep.mjs 60000', { timeoutMs: 300 });
    assert.equal(asked.timedOut, true);
    assert.equal(asked.exitCode, null);
    assert.ok(asked.durationMs < 3000, `${asked.durationMs} ms`);
    const t0 = Date.now();
    const own = await c.execCommand('node fixtures/sleep.mjs 60000');
    assert.equal(own.timedOut, true);
    assert.ok(own.durationMs >= 2900 && Date.now() - t0 < 20_000, `${own.durationMs} ms`);
    const ok = await c.execCommand('node fixtures/sleep.mjs 10');
    assert.equal(ok.stdout.toString(), 'slept');
  });

  test('execmd - the agent kills a command at its output limit and returns the output up to it', async () => {
    const r = await client().execCommand('yes');
    assert.equal(r.outputLimited, true);
    assert.equal(r.stdout.length, 65536);
    assert.ok(r.stdout.toString().startsWith('y\ny\n'));
  });

  test('execmd - a refused command runs nothing, names stage and reason, and the connection stays usable', async () => {
    const c = client();
    const err = await c.execCommand('touch file/pwned; id').catch((e: unknown) => e);
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_RCMD_COMMAND_REFUSED');
    assert.equal(err.details?.stage, 'syntax');
    assert.match(String(err.details?.reason), /command separator ';'/);
    const wl = await c.execCommand('rm -rf file').catch((e: unknown) => e);
    assert.ok(wl instanceof IbpError && wl.details?.stage === 'whitelist');
    assert.equal(existsSync(join(home, 'file', 'pwned')), false);
    assert.equal((await c.execCommand('echo still-here')).stdout.toString(), 'still-here\n');
  });

  test('execmd - a whitelisted command that is not installed fails with EXEC_FAILED', async () => {
    await assert.rejects(client().execCommand('nosuchcmd-ibp'), { code: 'IBP_ERR_RCMD_EXEC_FAILED' });
  });
});

describe('ibcmd agent - file transfer', () => {
  test('putfile/getfile - 3 MiB round trip, verified by SHA-256 on both ends, written atomically', async () => {
    const c = client();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const put = await c.putFile(data, 'file/big.bin');
    assert.deepEqual({ path: put.path, size: put.size, sha256: put.sha256 }, { path: 'file/big.bin', size: data.length, sha256: sha(data) });
    assert.deepEqual(readFileSync(join(home, 'file', 'big.bin')), data);
    assert.deepEqual(await c.getFile('file/big.bin'), data);
    const local = join(base, 'copy.bin');
    const got = await c.getFileTo('file/big.bin', local);
    assert.equal(got.sha256, sha(data));
    assert.deepEqual(readFileSync(local), data);
    assert.deepEqual(readdirSync(join(home, 'file')).filter((n) => n.endsWith('.ibcmd-tmp')), []);
  });

  test('putfile - a local path is uploaded, replacing the file; missing directories are created', async () => {
    const c = client();
    const src = join(base, 'local.txt');
    writeFileSync(src, 'first');
    await c.putFile(src, 'file/new/dir/x.txt');
    writeFileSync(src, 'second version');
    const r = await c.putFile(src, `${home}/file/new/dir/x.txt`);
    assert.equal(r.path, 'file/new/dir/x.txt');
    assert.equal(readFileSync(join(home, 'file', 'new', 'dir', 'x.txt'), 'utf8'), 'second version');
    const empty = await c.putFile(Buffer.alloc(0), 'file/empty');
    assert.equal(empty.size, 0);
    assert.deepEqual(await c.getFile('file/empty'), Buffer.alloc(0));
  });

  test('putfile/getfile - traversal, denied and missing paths are refused over the wire; nothing is written', async () => {
    const c = client();
    for (const p of ['../outside.txt', '/etc/passwd', 'file/../../outside.txt', 'etc/ibcmd.conf', 'keys/ibcmd.secret', 'run/x', '%2e%2e/x', 'file/\uFF0E\uFF0E/x']) {
      await assert.rejects(c.putFile(Buffer.from('x'), p), { code: 'IBP_ERR_RCMD_PATH_REFUSED' }, p);
      await assert.rejects(c.getFile(p), { code: 'IBP_ERR_RCMD_PATH_REFUSED' }, p);
    }
    await assert.rejects(c.getFile('file/none'), { code: 'IBP_ERR_RCMD_FILE_NOT_FOUND' });
    assert.equal(existsSync(join(base, 'outside.txt')), false);
    assert.notEqual(readFileSync(join(home, 'etc', 'ibcmd.conf'), 'utf8'), 'x');
    assert.equal((await c.execCommand('echo ok')).exitCode, 0, 'the connection survived the refusals');
  });

  test('putfile - a file over file.max_file_size is refused before any byte is sent', async () => {
    const c = client();
    await assert.rejects(c.putFile(Buffer.alloc(4 * 1024 * 1024 + 1), 'file/too-big'), { code: 'IBP_ERR_RCMD_FILE_TOO_LARGE' });
    assert.equal(existsSync(join(home, 'file', 'too-big')), false);
  });

  test('putfile - an upload whose SHA-256 does not match is refused and the old file stays', async () => {
    writeFileSync(join(home, 'file', 'guarded.txt'), 'original');
    const { ch, ns } = await rawConnect();
    const nc = newNonce();
    await ch.send(FrameType.AUTH, Buffer.concat([nc, clientProof(secret, ns, nc)]));
    assert.equal((await ch.next(5000, 'AUTH_OK')).type, FrameType.AUTH_OK);
    const k = sessionKeys(secret, ns, nc);
    ch.startSigning(k.clientToServer, k.serverToClient);
    await ch.send(FrameType.PUT, Buffer.from(JSON.stringify({ path: 'file/guarded.txt', size: 8 })));
    assert.equal((await ch.next(5000, 'READY')).type, FrameType.READY);
    await ch.send(FrameType.DATA, Buffer.from('replaced'));
    await ch.send(FrameType.END, Buffer.from(JSON.stringify({ size: 8, sha256: sha(Buffer.from('something else')) })));
    const answer = await ch.next(5000, 'ERROR');
    assert.equal(answer.type, FrameType.ERROR);
    assert.equal(parseJsonBody(answer.body, 'ERROR').code, 'IBP_ERR_RCMD_CHECKSUM');
    assert.equal(readFileSync(join(home, 'file', 'guarded.txt'), 'utf8'), 'original');
    ch.destroy();
  });
});

describe('ibcmd agent - who may ask', () => {
  test('auth - a client with another secret is refused and nothing runs', async () => {
    const c = client({ secret: randomBytes(32).toString('hex') });
    await assert.rejects(c.execCommand('touch file/wrong-secret'), { code: 'IBP_ERR_RCMD_AUTH_FAILED' });
    await assert.rejects(c.putFile(Buffer.from('x'), 'file/wrong-secret-put'), { code: 'IBP_ERR_RCMD_AUTH_FAILED' });
    assert.equal(existsSync(join(home, 'file', 'wrong-secret')), false);
    assert.equal(existsSync(join(home, 'file', 'wrong-secret-put')), false);
  });

  test('auth - a request sent before, or pipelined behind a wrongly-signed AUTH, is never run', async () => {
    const early = await rawConnect();
    const earlyBody = Buffer.from(JSON.stringify({ cmd: 'touch file/early-1234' }));
    early.sock.write(Buffer.concat([encodeHeader(FrameType.EXEC, earlyBody.length, false), earlyBody]));
    const e1 = await early.ch.next(5000, 'ERROR');
    assert.equal(e1.type, FrameType.ERROR);
    assert.equal(parseJsonBody(e1.body, 'ERROR').code, 'IBP_ERR_RCMD_AUTH_FAILED');

    const bad = await rawConnect();
    const nc = newNonce();
    const wrongProof = clientProof(randomBytes(32), bad.ns, nc);
    const exec = Buffer.from(JSON.stringify({ cmd: 'touch file/pipelined' }));
    bad.sock.write(Buffer.concat([
      encodeHeader(FrameType.AUTH, 64, false), nc, wrongProof,
      encodeHeader(FrameType.EXEC, exec.length, false), exec,
    ]));
    const e2 = await bad.ch.next(5000, 'ERROR');
    assert.equal(parseJsonBody(e2.body, 'ERROR').code, 'IBP_ERR_RCMD_AUTH_FAILED');
    await waitFor(() => bad.ch.broken, 'the agent to close the connection');
    assert.equal(existsSync(join(home, 'file', 'early-1234')), false);
    assert.equal(existsSync(join(home, 'file', 'pipelined')), false);
  });

  test('auth - the agent proves it holds the secret too (AUTH_OK carries its proof)', async () => {
    const { ch, ns } = await rawConnect();
    const nc = newNonce();
    await ch.send(FrameType.AUTH, Buffer.concat([nc, clientProof(secret, ns, nc)]));
    const ok = await ch.next(5000, 'AUTH_OK');
    assert.deepEqual(ok.body, serverProof(secret, ns, nc));
    ch.destroy();
  });

  test('auth - a tampered, a replayed and a cross-connection replayed request are refused and run nothing', async () => {
    const marker = (n: string) => join(home, 'file', n);
    // session 1: a genuine request, recorded
    const s1 = await rawConnect();
    const nc = newNonce();
    const authBytes = Buffer.concat([encodeHeader(FrameType.AUTH, 64, false), nc, clientProof(secret, s1.ns, nc)]);
    s1.sock.write(authBytes);
    assert.equal((await s1.ch.next(5000, 'AUTH_OK')).type, FrameType.AUTH_OK);
    const k = sessionKeys(secret, s1.ns, nc);
    s1.ch.startSigning(k.clientToServer, k.serverToClient);
    const signer = new FrameSigner(k.clientToServer);
    const execBytes = signedFrame(signer, FrameType.EXEC, Buffer.from(JSON.stringify({ cmd: 'touch file/genuine' })));
    s1.sock.write(execBytes);
    assert.equal((await s1.ch.next(10_000, 'EXIT')).type, FrameType.EXIT);
    assert.equal(existsSync(marker('genuine')), true);
    rmSync(marker('genuine'));
    // the same bytes again on the same connection: the sequence number has moved on
    s1.sock.write(execBytes);
    const e1 = await s1.ch.next(5000, 'ERROR');
    assert.equal(parseJsonBody(e1.body, 'ERROR').code, 'IBP_ERR_RCMD_BAD_MAC');
    assert.equal(existsSync(marker('genuine')), false);

    // session 2: replaying session 1's AUTH and EXEC against a fresh challenge
    const s2 = await rawConnect();
    s2.sock.write(Buffer.concat([authBytes, execBytes]));
    const e2 = await s2.ch.next(5000, 'ERROR');
    assert.equal(parseJsonBody(e2.body, 'ERROR').code, 'IBP_ERR_RCMD_AUTH_FAILED');
    assert.equal(existsSync(marker('genuine')), false);

    // session 3: authenticated, but the request's MAC is tampered with
    const s3 = await rawConnect();
    const nc3 = newNonce();
    s3.sock.write(Buffer.concat([encodeHeader(FrameType.AUTH, 64, false), nc3, clientProof(secret, s3.ns, nc3)]));
    assert.equal((await s3.ch.next(5000, 'AUTH_OK')).type, FrameType.AUTH_OK);
    const k3 = sessionKeys(secret, s3.ns, nc3);
    s3.ch.startSigning(k3.clientToServer, k3.serverToClient);
    const forged = signedFrame(new FrameSigner(k3.clientToServer), FrameType.EXEC, Buffer.from(JSON.stringify({ cmd: 'touch file/tamper' })));
    forged[forged.length - 1]! ^= 0x01;
    s3.sock.write(forged);
    const e3 = await s3.ch.next(5000, 'ERROR');
    assert.equal(parseJsonBody(e3.body, 'ERROR').code, 'IBP_ERR_RCMD_BAD_MAC');
    // a body changed in flight (same MAC) is refused the same way
    const s4 = await rawConnect();
    const nc4 = newNonce();
    s4.sock.write(Buffer.concat([encodeHeader(FrameType.AUTH, 64, false), nc4, clientProof(secret, s4.ns, nc4)]));
    assert.equal((await s4.ch.next(5000, 'AUTH_OK')).type, FrameType.AUTH_OK);
    const k4 = sessionKeys(secret, s4.ns, nc4);
    s4.ch.startSigning(k4.clientToServer, k4.serverToClient);
    const orig = signedFrame(new FrameSigner(k4.clientToServer), FrameType.EXEC, Buffer.from(JSON.stringify({ cmd: 'echo file/abcdefg' })));
    const swapped = Buffer.from(orig.toString('latin1').replace('echo file/abcdefg', 'touch file/abcdef'), 'latin1');
    s4.sock.write(swapped);
    const e4 = await s4.ch.next(5000, 'ERROR');
    assert.equal(parseJsonBody(e4.body, 'ERROR').code, 'IBP_ERR_RCMD_BAD_MAC');
    assert.equal(existsSync(marker('tamper')), false);
    assert.equal(existsSync(marker('abcdef')), false);
    for (const s of [s1, s2, s3, s4]) s.ch.destroy();
  });

  test('auth - garbage on the port is refused as a frame error and the agent keeps serving', async () => {
    const sock = connect({ host: '127.0.0.1', port: agent.port });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    sock.resume();
    await new Promise<void>((r) => sock.once('close', () => r()));
    assert.equal((await client().execCommand('echo alive')).stdout.toString(), 'alive\n');
  });
});

describe('ibcmd agent - audit log', () => {
  test('audit log - every request has a JSON line: peer, command or file, verdict, exit code, duration', async () => {
    const c = client();
    await c.execCommand('node fixtures/emit.mjs 5 audited');
    await c.execCommand('ls; id').catch(() => undefined);
    await c.putFile(Buffer.from('audit me'), 'file/audited.txt');
    await c.getFile('file/audited.txt');
    await c.getFile('../x').catch(() => undefined);
    await client({ secret: 'w'.repeat(40) }).execCommand('echo x').catch(() => undefined);
    const recs = auditRecords(home);
    for (const r of recs) {
      assert.match(r.time, /^\d{4}-\d\d-\d\dT/);
      assert.match(r.peer, /^127\.0\.0\.1:\d+$/);
      assert.equal(typeof r.durationMs, 'number');
    }
    const ran = recs.find((r) => r.cmd === 'node fixtures/emit.mjs 5 audited');
    assert.ok(ran);
    assert.equal(ran.action, 'execmd');
    assert.equal(ran.verdict, 'allowed');
    assert.equal(ran.exitCode, 5);
    assert.equal(ran.rule, 'node fixtures/emit.mjs **');
    const refused = recs.find((r) => r.cmd === 'ls; id');
    assert.ok(refused && refused.verdict === 'refused' && /syntax: command separator/.test(refused.reason ?? ''));
    assert.equal(refused.code, 'IBP_ERR_RCMD_COMMAND_REFUSED');
    const put = recs.find((r) => r.action === 'putfile' && r.file === 'file/audited.txt');
    assert.ok(put && put.verdict === 'allowed' && put.sha256 === sha(Buffer.from('audit me')) && put.bytes === 8);
    assert.ok(recs.some((r) => r.action === 'getfile' && r.file === 'file/audited.txt' && r.verdict === 'allowed'));
    assert.ok(recs.some((r) => r.action === 'getfile' && r.file === '../x' && r.verdict === 'refused'));
    assert.ok(recs.some((r) => r.action === 'auth' && r.verdict === 'refused' && /wrong proof/.test(r.reason ?? '')));
  });
});

describe('ibcmd agent - stopping', () => {
  test('SIGTERM - a command in flight finishes and is answered, then the agent exits 0 and removes its pid file', async () => {
    const pidFile = join(home, 'run', 'ibcmd.pid');
    assert.equal(existsSync(pidFile), true);
    const c = client();
    const idle = client();
    await idle.execCommand('echo idle-connection');
    const running = c.execCommand('node fixtures/sleep.mjs 800 file/sleep-started');
    await waitFor(() => existsSync(join(home, 'file', 'sleep-started')), 'the command to start');
    const code = agent.stop();
    const r = await running;
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.toString(), 'slept');
    assert.equal(await code, 0);
    assert.equal(existsSync(pidFile), false);
    await assert.rejects(idle.execCommand('echo after'), { code: 'IBP_ERR_RCMD_CONNECT' });
  });
});
