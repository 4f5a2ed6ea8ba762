/**
 * Reading requests and writing replies for the registry's HTTP API: bounded (and possibly gzip'd) bodies,
 * JSON parsing with coded errors, gzip of replies at or above the caller's `min_compress_size` (the
 * `X-IBP-Min-Compress-Size` header, else the registry's default), and the coded error reply
 * `{"error":{"code","message"}}` with the HTTP status the code maps to.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { IbpError, toIbpError, type ErrorCode } from '../core/errors.js';
import { HEADER_MIN_COMPRESS_SIZE, MAX_MIN_COMPRESS_SIZE } from './wire.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * Reads a request body of at most `maxBytes` (after gunzip when `Content-Encoding: gzip`).
 * @throws IbpError IBP_ERR_REGISTRY_HTTP (status 413 too large, 400 bad encoding or gzip).
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    req.resume();
    throw httpError(415, `Content-Encoding ${encoding} is not supported (gzip or none)`);
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw httpError(413, `request body of ${declared} bytes is larger than the ${maxBytes} allowed`);
  }
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return; // drained and dropped: the reply says why
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        reject(httpError(413, `request body is larger than the ${maxBytes} bytes allowed`));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', (err) => reject(httpError(400, `request body could not be read: ${err.message}`)));
    req.on('aborted', () => reject(httpError(400, 'the request was aborted')));
  });
  if (encoding !== 'gzip') return raw;
  try {
    return await gunzipAsync(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    const tooBig = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || /maxOutputLength|too large/i.test((err as Error).message);
    throw httpError(tooBig ? 413 : 400, tooBig ? `gzip'd request body inflates past the ${maxBytes} bytes allowed` : `request body is not valid gzip: ${(err as Error).message}`);
  }
}

/** Reads a JSON body (an empty body is `{}`). @throws IbpError IBP_ERR_REGISTRY_HTTP 400 when it is not JSON. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readBody(req, maxBytes);
  const text = body.toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw httpError(400, `request body is not JSON: ${(err as Error).message}`);
  }
}

/** An IBP_ERR_REGISTRY_HTTP error replied with `status`. */
export function httpError(status: number, message: string): IbpError {
  return new IbpError('IBP_ERR_REGISTRY_HTTP', message, { details: { status } });
}

/** Codes whose failure is the registry's (server side), not the request's. */
const SERVER_SIDE = /^IBP_ERR_(INTERNAL|LOG_|HOME_|CONFIG_READ)|_(IO|JOURNAL|WRITE|SAVE|DISK|CORRUPT)(_|$)/;

/** The HTTP status an error is replied with. */
export function statusOf(err: IbpError): number {
  const given = err.details?.status;
  if (err.code === 'IBP_ERR_REGISTRY_HTTP' && typeof given === 'number' && given >= 400 && given < 600) return given;
  const fixed: Partial<Record<ErrorCode, number>> = {
    IBP_ERR_REGISTRY_HTTP: 400,
    IBP_ERR_REGISTRY_AUTH: 401,
    IBP_ERR_REGISTRY_NOT_PUBLISHED: 404,
    IBP_ERR_REGISTRY_PACKAGE: 404,
    IBP_ERR_SERVER_SHUTTING_DOWN: 503,
    IBP_ERR_REGISTRY_NOT_FOUND: 404,
    IBP_ERR_REGISTRY_EXISTS: 409,
  };
  const s = fixed[err.code];
  if (s !== undefined) return s;
  if (SERVER_SIDE.test(err.code)) return 500;
  // anything else a handler raises is about the request's content (a store validation error)
  return 400;
}

/** True when the caller accepts a gzip'd reply. */
export function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''));
}

/**
 * The threshold the caller stated with `X-IBP-Min-Compress-Size`, undefined when absent.
 * @throws IbpError IBP_ERR_REGISTRY_HTTP 400 when the header is not an integer 0..2^31-1.
 */
export function statedCompressThreshold(req: IncomingMessage): number | undefined {
  const v = req.headers[HEADER_MIN_COMPRESS_SIZE];
  if (v === undefined) return undefined;
  const text = Array.isArray(v) ? (v[0] ?? '') : v;
  const n = Number(text);
  if (!/^\d{1,10}$/.test(text.trim()) || n > MAX_MIN_COMPRESS_SIZE) {
    throw httpError(400, `header X-IBP-Min-Compress-Size: ${JSON.stringify(text.slice(0, 32))}: expected an integer 0..${MAX_MIN_COMPRESS_SIZE} (bytes)`);
  }
  return n;
}

/**
 * True when a reply body of `length` bytes is gzip'd for this caller: it accepts gzip and the body is at
 * least its stated threshold (`X-IBP-Min-Compress-Size`), or `fallback` when it stated none.
 */
export function shouldGzip(req: IncomingMessage, length: number, fallback: number): boolean {
  if (!acceptsGzip(req)) return false;
  let threshold: number;
  try {
    threshold = statedCompressThreshold(req) ?? fallback;
  } catch {
    threshold = fallback; // refused earlier by the router; an error reply is not the place to fail again
  }
  return length >= threshold;
}

/** Replies `body` (bytes), gzip'd when it reaches the caller's threshold and the caller accepts it (`shouldGzip`). */
export async function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: Buffer,
  minCompressSize: number,
  headers: Record<string, string> = {},
): Promise<void> {
  let out = body;
  const h: Record<string, string> = { ...headers };
  if (shouldGzip(req, body.length, minCompressSize)) {
    out = await gzipAsync(body);
    h['content-encoding'] = 'gzip';
    h.vary = 'accept-encoding';
  }
  if (res.headersSent || res.destroyed) return;
  h['content-length'] = String(out.length);
  res.writeHead(status, h);
  res.end(out);
}

/** Replies a JSON value (see `sendBytes`). */
export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, minCompressSize: number, headers: Record<string, string> = {}): Promise<void> {
  return sendBytes(req, res, status, Buffer.from(JSON.stringify(value)), minCompressSize, { 'content-type': 'application/json; charset=utf-8', ...headers });
}

/** Replies the coded error (never throws; a reply already started is cut). */
export function sendError(res: ServerResponse, err: unknown): void {
  const e = toIbpError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = statusOf(e);
  const data = e.toJSON();
  if (data.details !== undefined) {
    const { status: _s, ...rest } = data.details;
    if (Object.keys(rest).length === 0) delete data.details;
    else data.details = rest;
  }
  const body = Buffer.from(JSON.stringify({ error: data }));
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="ibms"';
  res.writeHead(status, headers);
  res.end(body);
}

/** Replies 304 with no body. */
export function sendNotModified(res: ServerResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(304);
  res.end();
}
