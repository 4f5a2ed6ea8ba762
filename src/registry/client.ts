/**
 * `RegistryClient`: the HTTP client of the registry (ibms) for the CLI (admin calls, bearer token) and for
 * nodes (agents and platforms: node-signed view long-polls, package downloads, heartbeats).
 *
 * @example
 * const c = new RegistryClient({ ip: '127.0.0.1', port: 16001, node: 'ECIF', nodeKeyPem: readFileSync('keys/ECIF.key', 'utf8') });
 * const r = await c.getView(undefined, 30);
 * if (r.status === 200) console.log(decryptViewKeys(r.view, keyPem).nodes);
 */
import { createHash, type KeyObject } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import { IbpError } from '../core/errors.js';
import { decryptForNode, signNodeRequest, toPrivateKey } from './node-keys.js';
import {
  API_PREFIX, HEADER_INDEX, HEADER_MIN_COMPRESS_SIZE, HEADER_PID, HEADER_SHA256, MAX_MIN_COMPRESS_SIZE, MAX_VIEW_WAIT_SEC,
  type HeartbeatBody, type PlainView, type WireView,
} from './wire.js';

export { signNodeRequest } from './node-keys.js';

/** Options of `RegistryClient`. */
export interface RegistryClientOptions {
  /** The registry's address (ibms.conf `ibms.server`, or `ibma.conf` `ibms.server`). */
  ip: string;
  port: number;
  /** Admin token (`<registry home>/keys/ibms.admin.token`), for `admin()`. */
  adminToken?: string;
  /** This node's name and private key (PEM), for the node-signed calls. */
  node?: string;
  nodeKeyPem?: string;
  /** Time allowed for a reply, beyond a long-poll's wait (default 10 000 ms). */
  timeoutMs?: number;
  /**
   * This peer's compression threshold in bytes (an agent passes `ibma.comm.min_compress_size`): sent as
   * `X-IBP-Min-Compress-Size` so the registry gzips replies of at least this size, and request bodies of
   * at least this size are sent gzip'd. Absent (the admin CLI): no header (the registry's default applies)
   * and request bodies go uncompressed.
   */
  minCompressSize?: number;
}

/** A reply as received (body un-gzip'd). */
interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** The largest reply body a client takes (a package included). */
const MAX_REPLY_BYTES = 512 * 1024 * 1024;

/** The client of one registry. Stateless between calls (a new connection per call); `close()` aborts calls in flight. */
export class RegistryClient {
  readonly #opts: RegistryClientOptions;
  readonly #timeoutMs: number;
  #nodeKey: KeyObject | undefined;
  readonly #inFlight = new Set<ClientRequest>();
  #closed = false;

  constructor(opts: RegistryClientOptions) {
    if (typeof opts?.ip !== 'string' || opts.ip === '') throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', 'RegistryClient needs the registry ip');
    if (!Number.isInteger(opts.port) || opts.port <= 0 || opts.port > 65535) {
      throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `RegistryClient: port ${String(opts.port)} is not 1..65535`);
    }
    const mcs = opts.minCompressSize;
    if (mcs !== undefined && (!Number.isInteger(mcs) || mcs < 0 || mcs > MAX_MIN_COMPRESS_SIZE)) {
      throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `RegistryClient: minCompressSize ${String(mcs)} is not an integer 0..${MAX_MIN_COMPRESS_SIZE}`);
    }
    this.#opts = { ...opts };
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (opts.nodeKeyPem !== undefined) this.#nodeKey = toPrivateKey(opts.nodeKeyPem, `private key of node ${opts.node ?? '?'}`);
  }

  /**
   * Long-polls this node's view. Replies at once when the published version is greater than `index` (or
   * `index` is undefined); else the registry holds up to `waitSec` (max 60, default 30) and answers 304.
   * @throws IbpError IBP_ERR_REGISTRY_NOT_PUBLISHED (never distributed), _AUTH, _UNREACHABLE, _HTTP.
   */
  async getView(index?: number, waitSec?: number): Promise<{ status: 200; view: WireView } | { status: 304 }> {
    const q: string[] = [];
    if (index !== undefined) q.push(`index=${Math.trunc(index)}`);
    if (waitSec !== undefined) q.push(`wait=${Math.max(0, Math.trunc(waitSec))}`);
    const path = `${API_PREFIX}/view${q.length ? `?${q.join('&')}` : ''}`;
    const holdMs = Math.min(waitSec ?? 30, MAX_VIEW_WAIT_SEC) * 1000;
    const r = await this.#call('GET', path, { signed: true, timeoutMs: this.#timeoutMs + holdMs });
    if (r.status === 304) return { status: 304 };
    const view = parseJson(r) as WireView;
    return { status: 200, view };
  }

  /**
   * Downloads `so/<bin>` from the registry; the bytes are checked against the `X-IBP-Sha256` header.
   * @throws IbpError IBP_ERR_REGISTRY_PACKAGE (not in this node's view, or corrupted on the way), _AUTH, _UNREACHABLE.
   */
  async getPackage(bin: string): Promise<Buffer> {
    const r = await this.#call('GET', `${API_PREFIX}/packages/${encodeURIComponent(bin)}`, { signed: true, timeoutMs: Math.max(this.#timeoutMs, 60_000) });
    const want = headerText(r.headers[HEADER_SHA256]);
    const got = createHash('sha256').update(r.body).digest('hex');
    if (want !== got) {
      throw new IbpError('IBP_ERR_REGISTRY_PACKAGE', `package ${bin}: received ${r.body.length} bytes with sha256 ${got}, the registry announced ${want || 'none'}`, { retryable: true });
    }
    return r.body;
  }

  /** Tells the registry this peer is alive (every 5 s). @throws IbpError _AUTH, _UNREACHABLE, _HTTP. */
  async heartbeat(body: HeartbeatBody): Promise<void> {
    await this.#call('POST', `${API_PREFIX}/heartbeat`, { signed: true, body });
  }

  /**
   * An admin call with the bearer token. `path` is `/v1/admin/...` or just what follows `/v1/admin/`.
   * @example await client.admin('POST', 'apply', { action: 'add_node', node: 'ECIF' })
   * @throws IbpError with the registry's code (e.g. a store validation error), or _AUTH, _UNREACHABLE, _HTTP.
   */
  async admin<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const full = path.startsWith('/') ? path : `${API_PREFIX}/admin/${path}`;
    if (this.#opts.adminToken === undefined) throw new IbpError('IBP_ERR_REGISTRY_AUTH', 'no admin token given (keys/ibms.admin.token of the registry home)');
    const r = await this.#call(method, full, { body: method === 'POST' ? (body ?? {}) : undefined, admin: true });
    return parseJson(r) as T;
  }

  /** `GET /v1/health`: `{ok, pid, startedAtMs}`. */
  async health(): Promise<{ ok: boolean; pid: number; startedAtMs: number }> {
    return parseJson(await this.#call('GET', `${API_PREFIX}/health`, {})) as { ok: boolean; pid: number; startedAtMs: number };
  }

  /** Aborts every call in flight (they reject with IBP_ERR_REGISTRY_UNREACHABLE); later calls fail. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const req of this.#inFlight) req.destroy(new Error('client closed'));
    this.#inFlight.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #call(method: string, path: string, o: { signed?: boolean; admin?: boolean; body?: unknown; timeoutMs?: number }): Promise<RawReply> {
    if (this.#closed) return Promise.reject(new IbpError('IBP_ERR_REGISTRY_UNREACHABLE', 'registry client is closed'));
    const headers: Record<string, string> = { 'accept-encoding': 'gzip', [HEADER_PID]: String(process.pid) };
    const minCompress = this.#opts.minCompressSize;
    if (minCompress !== undefined) headers[HEADER_MIN_COMPRESS_SIZE] = String(minCompress);
    if (o.signed) {
      if (this.#opts.node === undefined || this.#nodeKey === undefined) {
        return Promise.reject(new IbpError('IBP_ERR_REGISTRY_AUTH', 'this call needs the node name and its private key (keys/NODE.key)'));
      }
      Object.assign(headers, signNodeRequest(this.#opts.node, this.#nodeKey, method, path));
    }
    if (o.admin) headers.authorization = `Bearer ${this.#opts.adminToken ?? ''}`;
    let payload: Buffer | undefined;
    if (o.body !== undefined) {
      payload = Buffer.from(JSON.stringify(o.body));
      headers['content-type'] = 'application/json';
      if (minCompress !== undefined && payload.length >= minCompress) {
        payload = gzipSync(payload);
        headers['content-encoding'] = 'gzip';
      }
      headers['content-length'] = String(payload.length);
    }
    const where = `${this.#opts.ip}:${this.#opts.port}`;
    const timeoutMs = o.timeoutMs ?? this.#timeoutMs;
    return new Promise<RawReply>((resolve, reject) => {
      const req = httpRequest({ host: this.#opts.ip, port: this.#opts.port, method, path, headers, agent: false });
      this.#inFlight.add(req);
      const timer = setTimeout(() => req.destroy(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.#inFlight.delete(req);
        const code = (err as NodeJS.ErrnoException).code;
        reject(new IbpError('IBP_ERR_REGISTRY_UNREACHABLE', `registry ${where}: ${method} ${path}: ${code ?? err.message}${code ? ` (${err.message})` : ''}`, { cause: err, retryable: true }));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY_BYTES) req.destroy(new Error(`reply larger than ${MAX_REPLY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          this.#inFlight.delete(req);
          let body = Buffer.concat(chunks);
          try {
            if (/gzip/i.test(headerText(res.headers['content-encoding']))) body = gunzipSync(body);
          } catch (err) {
            reject(new IbpError('IBP_ERR_REGISTRY_HTTP', `registry ${where}: ${method} ${path}: bad gzip body`, { cause: err }));
            return;
          }
          const reply = { status: res.statusCode ?? 0, headers: res.headers, body };
          if (reply.status >= 400) reject(replyError(reply, `${method} ${path}`));
          else resolve(reply);
        });
      });
      req.end(payload);
    });
  }
}

/** The view with every node's keys decrypted with this node's private key (PEM or KeyObject). */
export function decryptViewKeys(view: WireView, nodeKeyPem: string | KeyObject): PlainView {
  const key = toPrivateKey(nodeKeyPem);
  return {
    ...view,
    nodes: view.nodes.map(({ keyExpEnc, oldKeyExpEnc, ...n }) => ({
      ...n,
      keyExp: decryptForNode(key, keyExpEnc),
      oldKeyExp: decryptForNode(key, oldKeyExpEnc),
    })),
  };
}

/** The index (published version) a view reply carried. */
export function viewIndexOf(headers: IncomingHttpHeaders): number | undefined {
  const n = Number(headerText(headers[HEADER_INDEX]));
  return Number.isSafeInteger(n) ? n : undefined;
}

function headerText(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

function parseJson(r: RawReply): unknown {
  try {
    return JSON.parse(r.body.toString('utf8'));
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_HTTP', `the registry replied ${r.status} with a body that is not JSON`, { cause: err });
  }
}

/** The coded error of a 4xx/5xx reply (the registry's `{error:{code,message}}`, else a generic one). */
function replyError(r: RawReply, what: string): IbpError {
  try {
    const parsed = JSON.parse(r.body.toString('utf8')) as { error?: unknown };
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null) return IbpError.fromJSON(parsed.error);
  } catch {
    /* not JSON */
  }
  return new IbpError('IBP_ERR_REGISTRY_HTTP', `${what}: the registry replied HTTP ${r.status}`, { details: { status: r.status } });
}
