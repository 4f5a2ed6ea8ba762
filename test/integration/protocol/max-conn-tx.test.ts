/**
 * `serveConnection({ maxTransactions })` (ibas.conf `server.max_conn_tx`, after Tcn): the server moves a long
 * connection on with the response of its n-th transaction — GOAWAY in IB2, `Connection: close` in HTTP — so
 * the client's next call connects again and load can spread. The n-th call itself always succeeds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { defaultIbasConfText, parseIbasConf } from '../../../src/core/config/index.js';
import { resolvePlatformSettings } from '../../../src/platform/index.js';
import {
  Ib2Connection, serveConnection, type IncomingTransaction, type PreRequest, type ProtocolName, type ServerLoad, type TransactionHandler,
  type TransactionOutcome,
} from '../../../src/protocol/index.js';

/** A handler with #private state, as the platform worker is: the connection must call its members on it. */
class CountingHandler implements TransactionHandler {
  readonly securityFlags = { sign: false, compress: false, encrypt: false };
  #runs: string[] = [];
  get runs(): string[] {
    return this.#runs;
  }
  check(_pre: PreRequest, _protocol: ProtocolName): IbpError | undefined {
    return this.#runs.length < 0 ? new IbpError('IBP_ERR_SERVER_BUSY', 'never') : undefined;
  }
  load(): ServerLoad {
    return { busy: this.#runs.length % 3, total: 3 };
  }
  async run(tx: IncomingTransaction, reply: (o: TransactionOutcome) => void): Promise<void> {
    this.#runs.push(tx.jnlsno);
    reply({ body: tx.body, responseFiles: [] });
  }
}

interface Server {
  port: number;
  handler: CountingHandler;
  accepted: number;
  close(): Promise<void>;
}

async function startServer(maxTransactions: number, fileDir: string): Promise<Server> {
  const handler = new CountingHandler();
  const sockets = new Set<net.Socket>();
  const srv: Server = { port: 0, handler, accepted: 0, close: async () => undefined };
  const server = net.createServer((socket) => {
    srv.accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(socket, handler, { fileDir, maxTransactions, goAwayGraceMs: 200 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.port = (server.address() as net.AddressInfo).port;
  srv.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return srv;
}

async function waitFor(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function httpPost(port: number, agent: http.Agent, path: string, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; socketId: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, socketId: req.socket }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

describe('protocol - a connection goes away after max transactions', () => {
  const fileDir = mkdtempSync(join(tmpdir(), 'ibp-maxtx-'));
  let s3: Server;
  let s0: Server;
  before(async () => {
    s3 = await startServer(3, fileDir);
    s0 = await startServer(0, fileDir);
  });
  after(async () => {
    await s3?.close();
    await s0?.close();
    rmSync(fileDir, { recursive: true, force: true });
  });

  const call = (c: Ib2Connection, jnlsno: string) =>
    c.call({ clientNode: 'C', app: 'echo', jnlsno, body: Buffer.from(jnlsno), timeoutMs: 5000 });

  it('IB2: GOAWAY comes with the 3rd response; all three calls succeed; a 4th on it is refused NOT_SENT', async () => {
    const c = await Ib2Connection.connect({ host: '127.0.0.1', port: s3.port, connectTimeoutMs: 5000, fileDir });
    try {
      for (const j of ['a1', 'a2']) {
        assert.equal((await call(c, j)).body.toString(), j);
        assert.equal(c.goingAway, false, `no GOAWAY after ${j}`);
      }
      assert.equal((await call(c, 'a3')).body.toString(), 'a3');
      assert.equal(c.goingAway, true, 'GOAWAY arrived with the 3rd response');
      const err = await call(c, 'a4').then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof IbpError);
      assert.equal(err.code, 'IBP_ERR_CLIENT_NOT_CONNECTED');
      assert.equal(err.commStatus, 'NOT_SENT');
      await waitFor(() => c.closed, 'the connection to close');
    } finally {
      c.destroy();
    }
    assert.deepEqual(s3.handler.runs.filter((j) => j.startsWith('a')), ['a1', 'a2', 'a3'], 'three ran, once each');
  });

  it('IB2: the count is per connection; a new connection gets its own three', async () => {
    const c = await Ib2Connection.connect({ host: '127.0.0.1', port: s3.port, connectTimeoutMs: 5000, fileDir });
    try {
      for (const j of ['b1', 'b2']) await call(c, j);
      assert.equal(c.goingAway, false);
      await call(c, 'b3');
      assert.equal(c.goingAway, true);
    } finally {
      c.destroy();
    }
  });

  it('IB2: with 0 the connection is never moved on', async () => {
    const c = await Ib2Connection.connect({ host: '127.0.0.1', port: s0.port, connectTimeoutMs: 5000, fileDir });
    try {
      for (let i = 0; i < 8; i++) await call(c, `z${i}`);
      assert.equal(c.goingAway, false);
      assert.equal(c.closed, false);
    } finally {
      c.destroy();
    }
  });

  it('HTTP: the 3rd response of a keep-alive connection carries Connection: close; the 4th request opens a new one', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = s3.accepted;
      const r: Awaited<ReturnType<typeof httpPost>>[] = [];
      for (let i = 1; i <= 4; i++) r.push(await httpPost(s3.port, agent, '/ibp/echo', `h${i}`));
      assert.deepEqual(r.map((x) => x.status), [200, 200, 200, 200]);
      assert.deepEqual(r.map((x) => x.body), ['h1', 'h2', 'h3', 'h4']);
      assert.deepEqual(r.map((x) => x.headers.connection), ['keep-alive', 'keep-alive', 'close', 'keep-alive']);
      assert.equal(r[0]!.socketId, r[2]!.socketId, 'the first three shared one connection');
      assert.notEqual(r[2]!.socketId, r[3]!.socketId, 'the 4th went on a new connection');
      assert.equal(s3.accepted - before, 2);
    } finally {
      agent.destroy();
    }
  });

  it('a maxTransactions that is not an integer >= 0 is refused up front', () => {
    const sock = new net.Socket();
    for (const bad of [-1, 1.5, Number.NaN]) {
      assert.throws(() => serveConnection(sock, new CountingHandler(), { fileDir, maxTransactions: bad }),
        (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CONFIG_INVALID');
    }
    sock.destroy();
  });
});

describe('ibas.conf - server.max_conn_tx', () => {
  const conf = (extra: string): string => `{ "ibas" : { "server" : { "ip" : "127.0.0.1" , "port" : 18001${extra} } } }`;

  it('defaults to 0 (never), also in the default text; a value reaches the platform settings', () => {
    assert.equal(parseIbasConf(conf(''), 'ibas.conf').ibas.server.max_conn_tx, 0);
    assert.equal(parseIbasConf(defaultIbasConfText({ ip: '127.0.0.1', port: 18001 }), 'ibas.conf').ibas.server.max_conn_tx, 0);
    const cfg = parseIbasConf(conf(' , "max_conn_tx" : 500'), 'ibas.conf');
    assert.equal(resolvePlatformSettings(cfg, '/tmp/home', '/tmp/home/etc/ibas.conf').maxConnTx, 500);
  });

  it('a negative or fractional count is refused with the key named', () => {
    for (const bad of ['-1', '2.5', '"many"']) {
      assert.throws(() => parseIbasConf(conf(` , "max_conn_tx" : ${bad}`), 'ibas.conf'),
        (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CONFIG_INVALID' && e.message.includes('max_conn_tx'));
    }
  });
});
