import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { ListenSocket, makeListening } from '../../../src/master/listen-socket.js';
import { parseListenAddress } from '../../../src/master/index.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-master-sock-'));
const children: ChildProcess[] = [];
const sockets: ListenSocket[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of sockets) s.close();
  rmSync(base, { recursive: true, force: true });
});

async function listening(text: string): Promise<ListenSocket> {
  const s = await ListenSocket.bind(parseListenAddress(text, 't', base));
  sockets.push(s);
  makeListening([s]);
  return s;
}

/** A child accepting on its fd 3 (`count` connections, 0 = forever), answering each with its pid. */
function acceptor(sock: ListenSocket, count = 0): Promise<ChildProcess> {
  const script = `const net = require('net'); let n = 0;
    const srv = new net.Server((c) => { c.end(process.pid + '\\n'); if (${count} > 0 && ++n >= ${count}) srv.close(); });
    srv.listen({ fd: 3 }, () => process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', sock.fd] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`acceptor exited ${code}`)));
  });
}

function answer(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    let d = '';
    c.setEncoding('utf8');
    c.on('data', (x: string) => (d += x));
    c.on('end', () => resolve(d.trim()));
    c.on('error', reject);
  });
}

test('listen socket - the master holds the socket but never accepts: every connection reaches the process that inherited it', async () => {
  const sock = await listening('127.0.0.1:0');
  assert.ok(sock.port > 0);
  const child = await acceptor(sock);
  for (let i = 0; i < 40; i++) assert.equal(await answer(sock.port), String(child.pid));
});

test('listen socket - watch reports a waiting connection and leaves it in the backlog for a service to accept', async () => {
  const sock = await listening('127.0.0.1:0');
  const fired = new Promise<void>((r) => sock.watch(r));
  assert.equal(sock.watching, true);
  const reply = answer(sock.port);
  await fired;
  assert.equal(sock.watching, false, 'a watch fires once');
  assert.equal(await sock.probe(), true, 'the connection still waits: the master did not accept it');
  const child = await acceptor(sock, 1);
  assert.equal(await reply, String(child.pid));
  assert.equal(await sock.probe(), false, 'nothing waits once the service took it');
});

test('listen socket - a TCP port in use is IBP_ERR_MASTER_LISTEN, not a silent random port', async () => {
  const other: Server = createServer();
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const port = (other.address() as { port: number }).port;
  try {
    await assert.rejects(ListenSocket.bind(parseListenAddress(`127.0.0.1:${port}`, 't')), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_MASTER_LISTEN' && /EADDRINUSE/.test(e.message));
  } finally {
    other.close();
  }
});

test('listen socket - a stale unix socket file is replaced; one something accepts on is refused; close removes the file', async () => {
  const path = join(base, 'stale.sock');
  // A process that dies by SIGKILL leaves its socket file behind, as a crashed master would.
  const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(holder);
  await new Promise((r) => holder.stdout!.once('data', r));
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  assert.ok(existsSync(path));
  const sock = await listening(`u://${path}`);
  const live = createServer();
  await new Promise<void>((r) => live.listen(join(base, 'live.sock'), r));
  try {
    await assert.rejects(ListenSocket.bind(parseListenAddress(`u://${join(base, 'live.sock')}`, 't')), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_MASTER_LISTEN' && /already accepts/.test(e.message));
  } finally {
    live.close();
  }
  writeFileSync(join(base, 'plain'), 'x');
  await assert.rejects(ListenSocket.bind(parseListenAddress(`u://${join(base, 'plain')}`, 't')), /not a socket/);
  sock.close();
  assert.equal(existsSync(path), false);
});
