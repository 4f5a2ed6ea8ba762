/**
 * IBP over HTTP/1.1 on one connection, with node:http (an http.Server that never listens: the sniffed
 * socket is handed to it). Any HTTP client can call a transaction:
 *
 *   POST /ibp/<app>            body = the request message → 200 body = the response message
 *   PUT  /ibp/file/<file_id>   body = a file → 201, x-ibp-file: <stored name>
 *   GET  /ibp/file/<name>      a response file returned on this connection → 200 body = the file
 *
 * Requests on a connection are handled one at a time, in order. Timeouts: a request must keep arriving
 * (no more than readTimeoutMs of silence), an idle keep-alive connection is closed after idleTimeoutMs.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Socket } from 'node:net';
import { IbpError, toIbpError } from '../core/errors.js';
import type { AdapterContext, ProtocolAdapter } from './adapter.js';
import { createTempFileName, isFileId, isStoredFileName } from './file-names.js';
import { FIELD_MAX_BYTES } from './ib2-frames.js';
import { errorBody, httpStatusOf, rawErrorResponse } from './http-status.js';
import { CLOSE_LINGER_MS } from './limits.js';
import { runTransaction, safeCheck, safeLoad } from './run-transaction.js';
import { closeSoon } from './socket-io.js';
import { MAX_FILES, type TransactionOutcome } from './types.js';

type State = 'idle' | 'receiving' | 'handling';

export class HttpServerAdapter implements ProtocolAdapter {
  #c: AdapterContext;
  #state: State = 'idle';
  #idleSince = Date.now();
  #bytesAtIdle = 0;
  #queued = 0;
  #chain: Promise<void> = Promise.resolve();
  #goingAway: boolean;
  #closing = false;
  /** Response files returned on this connection: stored name → path. */
  #returned = new Map<string, string>();

  constructor(c: AdapterContext) {
    this.#c = c;
    this.#goingAway = c.goingAway;
    const server = new http.Server({ requireHostHeader: false, keepAliveTimeout: 0, requestTimeout: 0, headersTimeout: 0 });
    server.keepAliveTimeout = 0;
    server.timeout = Math.min(c.limits.readTimeoutMs, c.limits.idleTimeoutMs);
    server.on('timeout', () => this.#onTick());
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.emit('connection', c.socket); // node:http keeps the server reachable as socket.server
  }

  get inFlight(): boolean {
    return this.#queued > 0 || this.#c.socket.bytesRead > this.#bytesAtIdle;
  }

  goAway(): void {
    if (this.#goingAway) return;
    this.#goingAway = true;
    if (!this.inFlight) this.#close(undefined);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#queued++;
    if (this.#queued > 1) this.#c.socket.pause(); // pipelined: parse no further until this one's turn
    this.#chain = this.#chain.then(async () => {
      if (this.#queued > 1) this.#c.socket.resume();
      this.#state = 'receiving';
      const done = new Promise<void>((resolve) => {
        if (res.destroyed || this.#c.socket.destroyed) resolve();
        else res.once('close', resolve);
      });
      try {
        await this.#route(req, res);
      } catch (err) {
        this.#sendError(res, toIbpError(err));
      }
      await done;
      this.#queued--;
      if (this.#queued === 0) {
        this.#state = 'idle';
        this.#idleSince = Date.now();
        this.#bytesAtIdle = this.#c.socket.bytesRead;
        if (this.#goingAway && !this.inFlight) this.#close(undefined);
      }
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    if (!path.startsWith('/ibp/')) throw httpError(`no IBP resource at ${path} (expected /ibp/<app> or /ibp/file/<name>)`);
    const rest = path.slice(5);
    if (rest.startsWith('file/')) {
      const name = decodeSegment(rest.slice(5));
      if (req.method === 'PUT') return this.#putFile(req, res, name);
      if (req.method === 'GET' || req.method === 'HEAD') return this.#getFile(req, res, name);
      throw httpError(`${req.method} is not allowed on /ibp/file/ (use PUT or GET)`, 405);
    }
    const app = decodeSegment(rest);
    if (req.method !== 'POST') throw httpError(`${req.method} is not allowed on /ibp/<app> (use POST)`, 405);
    return this.#transaction(req, res, app);
  }

  async #transaction(req: IncomingMessage, res: ServerResponse, app: string): Promise<void> {
    const { handler, log, limits, fileDir } = this.#c;
    checkField('app', app, FIELD_MAX_BYTES.app, true);
    const clientNode = header(req, 'x-ibp-client-node');
    const jnlsno = header(req, 'x-ibp-jnlsno');
    checkField('x-ibp-client-node', clientNode, FIELD_MAX_BYTES.clientNode, false);
    checkField('x-ibp-jnlsno', jnlsno, FIELD_MAX_BYTES.jnlsno, false);
    const trace = header(req, 'x-ibp-trace') === '1';
    const names = header(req, 'x-ibp-files').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length > MAX_FILES) {
      throw new IbpError('IBP_ERR_PROTO_TOO_MANY_FILES', `x-ibp-files names ${names.length} files, at most ${MAX_FILES} allowed`);
    }
    for (const n of names) {
      if (!isStoredFileName(n)) {
        throw new IbpError('IBP_ERR_FILE_BAD_NAME', `x-ibp-files: ${JSON.stringify(n)} is not a stored name (file_id)_(10 chars).tmp`);
      }
    }
    const refusal = safeCheck(handler, { clientNode, app, jnlsno, trace, fileCount: names.length }, 'HTTP', log);
    if (refusal) {
      this.#sendError(res, refusal);
      return;
    }
    const requestFiles: string[] = [];
    for (const n of names) {
      const p = join(fileDir, n);
      const st = await stat(p).catch(() => undefined);
      if (!st?.isFile()) throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `x-ibp-files: ${n} is not in file/ (PUT it to /ibp/file/<file_id> first)`);
      requestFiles.push(p);
    }
    const body = await readBody(req, limits.maxBodyBytes, 'request body');
    this.#state = 'handling';
    const tx = {
      protocol: 'HTTP' as const, clientNode, clientIp: this.#c.remoteIp, clientPort: this.#c.remotePort,
      app, jnlsno, trace, body, requestFiles,
    };
    const contentType = header(req, 'content-type') || 'application/octet-stream';
    await runTransaction(handler, tx, async (o) => this.#sendOutcome(res, o, contentType), log);
  }

  async #sendOutcome(res: ServerResponse, o: TransactionOutcome, contentType: string): Promise<void> {
    if (o.error) {
      this.#sendError(res, o.error);
      return;
    }
    const names: string[] = [];
    try {
      if (o.responseFiles.length > MAX_FILES) {
        throw new IbpError('IBP_ERR_PROTO_TOO_MANY_FILES', `${o.responseFiles.length} response files, at most ${MAX_FILES} allowed`);
      }
      for (const p of o.responseFiles) {
        const st = await stat(p).catch(() => undefined);
        if (!st?.isFile()) throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `response file ${basename(p)} does not exist`);
        names.push(basename(p));
      }
    } catch (err) {
      this.#c.log.warn({ err, protocol: 'HTTP' }, 'response files cannot be sent; answering with the error');
      this.#sendError(res, toIbpError(err));
      return;
    }
    o.responseFiles.forEach((p, i) => this.#returned.set(names[i]!, p));
    const headers: http.OutgoingHttpHeaders = {
      'content-type': contentType,
      'content-length': o.body.length,
      ...this.#ibpHeaders(),
    };
    if (names.length > 0) headers['x-ibp-files'] = names.join(',');
    if (this.#goingAway) headers.connection = 'close';
    res.writeHead(200, headers);
    res.end(o.body);
  }

  async #putFile(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    const { fileDir, limits } = this.#c;
    if (!isFileId(fileId)) throw new IbpError('IBP_ERR_FILE_BAD_NAME', `file_id ${JSON.stringify(fileId)} is not 1..64 characters of [A-Za-z0-9.-]`);
    checkDeclaredLength(req, limits.maxFileBytes, 'file');
    const path = createTempFileName(fileDir, fileId);
    const fh = await open(path, 'wx', 0o640);
    let size = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limits.maxFileBytes) throw tooLarge('file', size, limits.maxFileBytes, 'IBP_ERR_FILE_TOO_LARGE');
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      if (!req.complete) throw new IbpError('IBP_ERR_PROTO_TRUNCATED', 'the file upload ended early');
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw err;
    }
    const name = basename(path);
    res.writeHead(201, { 'x-ibp-file': name, 'content-length': 0, ...this.#ibpHeaders(), ...(this.#goingAway ? { connection: 'close' } : {}) });
    res.end();
  }

  async #getFile(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const path = this.#returned.get(name);
    if (path === undefined) {
      throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `${name} was not returned on this connection`);
    }
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `${name} no longer exists`);
    this.#state = 'handling';
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': st.size,
      ...(this.#goingAway ? { connection: 'close' } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const rs = createReadStream(path, { start: 0, end: Math.max(0, st.size - 1) });
      if (st.size === 0) {
        rs.destroy();
        res.end();
        resolve();
        return;
      }
      rs.on('error', (err) => {
        this.#c.log.warn({ err: toIbpError(err), protocol: 'HTTP' }, 'reading a response file failed');
        res.destroy();
        resolve();
      });
      res.on('close', () => {
        rs.destroy();
        resolve();
      });
      rs.pipe(res);
    });
  }

  #ibpHeaders(): http.OutgoingHttpHeaders {
    const load = safeLoad(this.#c.handler);
    const f = this.#c.handler.securityFlags ?? { sign: false, compress: false, encrypt: false };
    return {
      'x-ibp-load': `${load.busy}/${load.total}`,
      'x-ibp-security': `sign=${f.sign ? 1 : 0},compress=${f.compress ? 1 : 0},encrypt=${f.encrypt ? 1 : 0}`,
    };
  }

  #sendError(res: ServerResponse, err: IbpError): void {
    const status = (err.details?.httpStatus as number | undefined) ?? httpStatusOf(err);
    if (status === 400 || status === 405 || status === 413 || status === 408) {
      this.#c.log.warn({ err, protocol: 'HTTP', remote: this.#remote() }, 'bad IBP-over-HTTP request');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = errorBody(err);
    // node:http skips an unread body before the next request; past maxBodyBytes (or of unknown size) we
    // close instead of reading it all.
    const req = res.req;
    const declared = req.headers['content-length'];
    const skippable = req.complete || (declared !== undefined && Number(declared) <= this.#c.limits.maxBodyBytes);
    const close = this.#goingAway || status === 413 || status === 408 || !skippable;
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': body.length,
      'x-ibp-error-code': err.code,
      ...this.#ibpHeaders(),
      ...(close ? { connection: 'close' } : {}),
    });
    res.end(body);
  }

  #onTick(): void {
    const { limits, log, socket } = this.#c;
    if (this.#closing) return;
    // A socket timeout fires once per quiet period: arm the next tick unless we close below.
    socket.setTimeout(Math.min(limits.readTimeoutMs, limits.idleTimeoutMs));
    if (this.#state === 'handling') return;
    const partial = socket.bytesRead > this.#bytesAtIdle;
    if (this.#state === 'receiving' || partial) {
      const err = new IbpError('IBP_ERR_PROTO_READ_TIMEOUT', `the HTTP request stalled for ${limits.readTimeoutMs} ms`);
      log.warn({ err, protocol: 'HTTP', remote: this.#remote() }, 'HTTP request timed out; closing the connection');
      this.#close(this.#state === 'idle' ? rawErrorResponse(err) : undefined);
      return;
    }
    if (Date.now() - this.#idleSince >= limits.idleTimeoutMs) {
      log.debug?.({ protocol: 'HTTP', remote: this.#remote() }, 'idle connection closed');
      this.#close(undefined);
    }
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (this.#closing) return;
    const e = new IbpError('IBP_ERR_PROTO_HTTP', `malformed HTTP request: ${err.code ?? ''} ${err.message}`.trim(), { cause: err });
    this.#c.log.warn({ err: e, protocol: 'HTTP', remote: this.#remote() }, 'malformed HTTP request; closing the connection');
    if (this.#queued > 0) {
      // Garbage after a valid request: answer that request (with Connection: close), then close.
      this.#goingAway = true;
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    this.#close(socket.writable ? rawErrorResponse(e, status) : undefined);
  }

  #close(last: Buffer | undefined): void {
    if (this.#closing) return;
    this.#closing = true;
    closeSoon(this.#c.socket, last, Math.min(CLOSE_LINGER_MS, this.#c.limits.readTimeoutMs));
  }

  #remote(): string {
    return `${this.#c.remoteIp}:${this.#c.remotePort}`;
  }
}

function httpError(message: string, httpStatus = 404): IbpError {
  return new IbpError('IBP_ERR_PROTO_HTTP', message, { details: { httpStatus } });
}

function decodeSegment(s: string): string {
  let out: string;
  try {
    out = decodeURIComponent(s);
  } catch {
    throw httpError(`bad percent-encoding in ${JSON.stringify(s)}`, 400);
  }
  if (out.includes('/')) throw httpError(`${JSON.stringify(out)} must be one path segment`, 400);
  return out;
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
}

function checkField(name: string, v: string, maxBytes: number, required: boolean): void {
  const n = Buffer.byteLength(v);
  if (required && n === 0) throw new IbpError('IBP_ERR_PROTO_HTTP', `${name} is empty`, { details: { httpStatus: 400 } });
  if (n > maxBytes) throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', `${name} is ${n} bytes, at most ${maxBytes} allowed`);
}

function tooLarge(what: string, n: number, max: number, code: 'IBP_ERR_FILE_TOO_LARGE' | 'IBP_ERR_PROTO_FRAME_TOO_LARGE'): IbpError {
  return new IbpError(code, `${what} is ${n} bytes, at most ${max} allowed`, { details: { length: n, max } });
}

function checkDeclaredLength(req: IncomingMessage, max: number, what: 'file' | 'request body'): void {
  const cl = req.headers['content-length'];
  if (cl !== undefined && Number(cl) > max) {
    throw tooLarge(what, Number(cl), max, what === 'file' ? 'IBP_ERR_FILE_TOO_LARGE' : 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
  }
}

async function readBody(req: IncomingMessage, max: number, what: 'request body'): Promise<Buffer> {
  checkDeclaredLength(req, max, what);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge(what, size, max, 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    parts.push(chunk);
  }
  if (!req.complete) throw new IbpError('IBP_ERR_PROTO_TRUNCATED', 'the request body ended early');
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}
