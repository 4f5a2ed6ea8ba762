/**
 * IBP over HTTP against a real server: fetch and node:http as clients, raw sockets for malformed input.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RawPeer, startServer, type TestServer } from './harness.js';

const READ_MS = 300;
const CLOSE_BOUND_MS = READ_MS * 2 + 300 + 1500;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with node:http on `agent` (keep-alive, one socket: every request on the same connection). */
function request(port: number, agent: http.Agent | false, method: string, path: string, body?: Buffer | string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

function errorCode(r: Reply): string {
  assert.equal(r.headers['content-type'], 'application/json');
  const parsed = JSON.parse(r.body.toString()) as { error: { code: string; message: string } };
  assert.equal(typeof parsed.error.message, 'string');
  assert.equal(r.headers['x-ibp-error-code'], parsed.error.code);
  return parsed.error.code;
}

describe('IBP over HTTP', () => {
  let srv: TestServer;
  let base: string;
  before(async () => {
    srv = await startServer({
      limits: { readTimeoutMs: READ_MS, idleTimeoutMs: 60_000, maxBodyBytes: 4096, maxFileBytes: 10_000 },
      securityFlags: { sign: false, compress: true, encrypt: false },
      load: { busy: 3, total: 7 },
      apps: {
        async make_file(tx, reply) {
          const p = join(srv.fileDir, 'report_ABCDEFGHIJ.tmp');
          writeFileSync(p, `report for ${tx.body.toString()}`);
          reply({ body: Buffer.from('made'), responseFiles: [p] });
        },
      },
      check: (pre, _protocol, conn) => {
        if (pre.jnlsno === 'GOAWAY') conn.goAway();
        return undefined;
      },
    });
    base = `http://127.0.0.1:${srv.port}`;
  });
  after(() => srv.close());

  it('HTTP - fetch POST /ibp/<app>: 200 with the body, x-ibp-load, x-ibp-security, content-type echoed', async () => {
    const res = await fetch(`${base}/ibp/echo`, { method: 'POST', body: '{"hello":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"hello":1}');
    assert.equal(res.headers.get('x-ibp-load'), '3/7');
    assert.equal(res.headers.get('x-ibp-security'), 'sign=0,compress=1,encrypt=0');
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('x-ibp-files'), null);
  });

  it('HTTP - x-ibp-client-node, x-ibp-jnlsno and x-ibp-trace reach the transaction', async () => {
    const res = await fetch(`${base}/ibp/meta?ignored=1`, {
      method: 'POST', body: '', headers: { 'x-ibp-client-node': 'WEB', 'x-ibp-jnlsno': 'J-77', 'x-ibp-trace': '1' },
    });
    const meta = await res.json() as Record<string, unknown>;
    assert.deepEqual([meta.protocol, meta.clientNode, meta.jnlsno, meta.trace, meta.app], ['HTTP', 'WEB', 'J-77', true, 'meta']);
  });

  it('HTTP - keep-alive: several calls travel on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = srv.conns.length;
    for (let i = 0; i < 3; i++) {
      const r = await request(srv.port, agent, 'POST', '/ibp/echo', `n${i}`);
      assert.equal(r.body.toString(), `n${i}`);
    }
    assert.equal(srv.conns.length - before, 1);
    agent.destroy();
  });

  it('HTTP - files: PUT gives the stored name, POST names it, the response file is fetched on the same connection only', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const put = await request(srv.port, agent, 'PUT', '/ibp/file/invoice', 'file content');
    assert.equal(put.status, 201);
    const stored = String(put.headers['x-ibp-file']);
    assert.match(stored, /^invoice_[A-Za-z0-9]{10}\.tmp$/);
    assert.equal(readFileSync(join(srv.fileDir, stored), 'utf8'), 'file content');

    const call = await request(srv.port, agent, 'POST', '/ibp/echo_files', 'with file', { 'x-ibp-files': stored });
    assert.equal(call.status, 200);
    assert.deepEqual(srv.runs.at(-1)!.requestFiles, [join(srv.fileDir, stored)]);
    assert.equal(call.headers['x-ibp-files'], stored);

    const made = await request(srv.port, agent, 'POST', '/ibp/make_file', 'Q3');
    assert.equal(made.headers['x-ibp-files'], 'report_ABCDEFGHIJ.tmp');
    const got = await request(srv.port, agent, 'GET', '/ibp/file/report_ABCDEFGHIJ.tmp');
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'report for Q3');

    const other = await request(srv.port, false, 'GET', '/ibp/file/report_ABCDEFGHIJ.tmp');
    assert.equal(other.status, 404);
    assert.equal(errorCode(other), 'IBP_ERR_FILE_NOT_FOUND');
    agent.destroy();
  });

  it('HTTP - errors map to 404 / 503 / 500 with a JSON body and x-ibp-error-code', async () => {
    const cases: Array<[string, number, string]> = [
      ['/ibp/no_such_app', 404, 'IBP_ERR_SERVER_APP_NOT_FOUND'],
      ['/ibp/busy', 503, 'IBP_ERR_SERVER_BUSY'],
      ['/ibp/fail', 500, 'IBP_ERR_SERVER_APP_FAILED'],
      ['/ibp/fail_coded', 500, 'IBP_ERR_SERVER_APP_FAILED'],
      ['/ibp/noreply', 500, 'IBP_ERR_SERVER_APP_FAILED'],
    ];
    for (const [path, status, code] of cases) {
      const r = await request(srv.port, false, 'POST', path, 'x');
      assert.equal(r.status, status, path);
      assert.equal(errorCode(r), code, path);
      assert.equal(r.headers['x-ibp-load'], '3/7');
    }
  });

  it('HTTP - requests that break the mapping get 400/404/405/413 with a code, the connection stays usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = srv.conns.length;
    const cases: Array<[string, string, http.OutgoingHttpHeaders, number, string]> = [
      ['POST', '/other', {}, 404, 'IBP_ERR_PROTO_HTTP'],
      ['GET', '/ibp/echo', {}, 405, 'IBP_ERR_PROTO_HTTP'],
      ['DELETE', '/ibp/file/x', {}, 405, 'IBP_ERR_PROTO_HTTP'],
      ['POST', `/ibp/${'a'.repeat(65)}`, {}, 400, 'IBP_ERR_PROTO_BAD_FIELD'],
      ['POST', '/ibp/a%2Fb', {}, 400, 'IBP_ERR_PROTO_HTTP'],
      ['POST', '/ibp/%E0%A4%A', {}, 400, 'IBP_ERR_PROTO_HTTP'],
      ['POST', '/ibp/echo', { 'x-ibp-files': '../etc/passwd' }, 400, 'IBP_ERR_FILE_BAD_NAME'],
      ['POST', '/ibp/echo', { 'x-ibp-files': 'gone_0123456789.tmp' }, 404, 'IBP_ERR_FILE_NOT_FOUND'],
      ['POST', '/ibp/echo', { 'x-ibp-files': 'a,b,c,d,e' }, 400, 'IBP_ERR_PROTO_TOO_MANY_FILES'],
      ['POST', '/ibp/echo', { 'x-ibp-client-node': 'n'.repeat(65) }, 400, 'IBP_ERR_PROTO_BAD_FIELD'],
      ['PUT', '/ibp/file/bad_id', {}, 400, 'IBP_ERR_FILE_BAD_NAME'],
    ];
    for (const [method, path, headers, status, code] of cases) {
      const r = await request(srv.port, agent, method, path, method === 'POST' || method === 'PUT' ? 'b' : undefined, headers);
      assert.equal(r.status, status, `${method} ${path}`);
      assert.equal(errorCode(r), code, `${method} ${path}`);
    }
    assert.equal(srv.conns.length - before, 1, 'all on one connection');
    agent.destroy();
  });

  it('HTTP - pipelined requests on one connection are answered one at a time, in order', async () => {
    const p = await RawPeer.connect(srv.port);
    const post = (body: string): string => `POST /ibp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    p.write(post('first') + post('second') + post('third'));
    await p.waitFor((x) => (x.data.toString().match(/HTTP\/1\.1 200/g) ?? []).length === 3 && x.data.toString().endsWith('third'), 3000, 'three responses');
    const text = p.data.toString();
    assert.ok(text.indexOf('first') < text.indexOf('second') && text.indexOf('second') < text.indexOf('third'));
    p.destroy();
  });

  it('HTTP - a body past maxBodyBytes is refused 413 from Content-Length, and the connection is closed', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc');
    await p.waitClosed(CLOSE_BOUND_MS);
    assert.match(p.data.toString(), /^HTTP\/1\.1 413 /);
    assert.match(p.data.toString(), /IBP_ERR_PROTO_FRAME_TOO_LARGE/);
  });

  it('HTTP - uploads past maxFileBytes are refused 413 (declared or chunked) and leave no file', async () => {
    const declared = await request(srv.port, false, 'PUT', '/ibp/file/huge', Buffer.alloc(20_000));
    assert.equal(declared.status, 413);
    assert.equal(errorCode(declared), 'IBP_ERR_FILE_TOO_LARGE');
    const p = await RawPeer.connect(srv.port);
    const chunk = Buffer.alloc(6000, 0x61);
    p.write(`PUT /ibp/file/chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
    p.write(Buffer.concat([Buffer.from('1770\r\n'), chunk, Buffer.from('\r\n1770\r\n'), chunk, Buffer.from('\r\n0\r\n\r\n')]));
    await p.waitClosed(CLOSE_BOUND_MS);
    assert.match(p.data.toString(), /^HTTP\/1\.1 413 /);
    assert.deepEqual(readdirSync(srv.fileDir).filter((n) => n.startsWith('huge') || n.startsWith('chunky')), []);
  });

  async function expectClosed(bytes: string, code: string, status?: number): Promise<number> {
    const since = srv.log.records.length;
    const t0 = Date.now();
    const p = await RawPeer.connect(srv.port);
    p.write(bytes);
    await p.waitClosed(CLOSE_BOUND_MS);
    await srv.log.waitWarn(code, 2000, since);
    if (status !== undefined) assert.match(p.data.toString(), new RegExp(`^HTTP/1\\.1 ${status} `));
    return Date.now() - t0;
  }

  it('HTTP - malformed HTTP: PROTO_HTTP logged, 400 (431 for huge headers), connection closed', async () => {
    await expectClosed('GET /\x01\x02 HTTP/1.1\r\n\r\n', 'IBP_ERR_PROTO_HTTP', 400);
    await expectClosed('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 'IBP_ERR_PROTO_HTTP', 400);
    await expectClosed(`GET /ibp/echo HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 'IBP_ERR_PROTO_HTTP', 431);
  });

  it('HTTP - not quite a method ("POSTX"): BAD_MAGIC, closed', async () => {
    await expectClosed('POSTX /ibp/echo HTTP/1.1\r\n\r\n', 'IBP_ERR_PROTO_BAD_MAGIC');
  });

  it('HTTP - stalled headers or a stalled body: READ_TIMEOUT, closed within the read timeout', async () => {
    const took = await expectClosed('POST /ibp/echo HTTP/1.1\r\nHost: x\r\n', 'IBP_ERR_PROTO_READ_TIMEOUT', 408);
    assert.ok(took >= READ_MS - 20, `closed after ${took} ms`);
    await expectClosed('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc', 'IBP_ERR_PROTO_READ_TIMEOUT');
  });

  it('HTTP - going away during a call: Connection: close on its response, then the socket closes', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nx-ibp-jnlsno: GOAWAY\r\nContent-Length: 2\r\n\r\nhi');
    await p.waitClosed(CLOSE_BOUND_MS);
    const text = p.data.toString();
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /connection: close/i);
    assert.ok(text.endsWith('hi'));
  });

  it('HTTP - going away on an idle keep-alive connection closes it at once', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
    await p.waitFor((x) => x.data.toString().endsWith('hi'), 2000, 'response');
    const conn = srv.conns.at(-1)!;
    assert.equal(conn.protocol, 'HTTP');
    assert.equal(conn.inFlight, false);
    conn.goAway();
    const took = await p.waitClosed(2000);
    assert.ok(took < READ_MS, `closed after ${took} ms`);
  });
});

describe('IBP over HTTP - idle timeout', () => {
  it('HTTP - an idle keep-alive connection is closed after idleTimeoutMs', async () => {
    const srv = await startServer({ limits: { readTimeoutMs: 100, idleTimeoutMs: 300 } });
    try {
      const p = await RawPeer.connect(srv.port);
      p.write('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
      await p.waitFor((x) => x.data.toString().endsWith('hi'), 2000, 'response');
      const took = await p.waitClosed(3000);
      assert.ok(took >= 250 && took < 1500, `closed after ${took} ms`);
      assert.deepEqual(srv.log.warnCodes(), []);
    } finally {
      await srv.close();
    }
  });
});
