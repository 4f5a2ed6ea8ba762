/**
 * The registry's HTTP server (node:http): routes `/v1/*` to the admin and node handlers, answers every
 * failure with a coded JSON error, and closes gracefully (parked long-polls get 304 at once, requests in
 * flight finish). Bad input never escapes a handler: a worker serves until it is told to stop.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { IbpError, toIbpError } from '../core/errors.js';
import type { IbpLogger } from '../core/log.js';
import { handleAdmin } from './admin-api.js';
import type { ApiContext } from './api-context.js';
import { httpError, sendError, sendJson, statedCompressThreshold, statusOf } from './http-io.js';
import { NodeApi } from './node-api.js';
import { RequestAuth } from './request-auth.js';
import { SessionTable } from './sessions.js';
import type { RegistrySettings } from './settings.js';
import type { RegistryStore } from './store/index.js';
import { ViewWaiters } from './view-waiters.js';
import { API_PREFIX } from './wire.js';

/** Options of `RegistryServer`. */
export interface RegistryServerOptions {
  settings: RegistrySettings;
  store: RegistryStore;
  log: IbpLogger;
  /** Event log (admin changes, publishes); defaults to `log`. */
  events?: IbpLogger;
  now?: () => number;
}

/** Longest URL taken, characters. */
const MAX_URL_CHARS = 4096;

/** One worker's HTTP API. */
export class RegistryServer {
  readonly #server: Server;
  readonly #ctx: ApiContext;
  readonly #nodeApi: NodeApi;
  readonly #startedAtMs = Date.now();
  readonly #log: IbpLogger;
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  constructor(opts: RegistryServerOptions) {
    this.#log = opts.log;
    const waiters = new ViewWaiters();
    let nodeApi: NodeApi | undefined;
    this.#ctx = {
      settings: opts.settings,
      store: opts.store,
      auth: new RequestAuth({ keysDir: `${opts.settings.homeRoot}/keys`, tokenPath: opts.settings.tokenPath, now: opts.now }),
      sessions: new SessionTable(opts.now),
      waiters,
      log: opts.log,
      events: opts.events ?? opts.log,
      published: (nodes) => {
        nodeApi?.forget(nodes);
        waiters.notify(nodes);
      },
    };
    this.#nodeApi = nodeApi = new NodeApi(this.#ctx);
    this.#server = createServer({ requestTimeout: 120_000, headersTimeout: 20_000, keepAliveTimeout: 5_000 }, (req, res) => {
      void this.#handle(req, res);
    });
    this.#server.maxHeadersCount = 64;
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && !socket.destroyed) {
        const body = JSON.stringify({ error: { code: 'IBP_ERR_REGISTRY_HTTP', message: `malformed HTTP request: ${err.code ?? err.message}` } });
        socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else socket.destroy();
    });
  }

  /** Wakes the long-polls of nodes whose view was published outside an admin call (the so/ watcher). */
  published(nodes: readonly string[]): void {
    this.#ctx.published(nodes);
  }

  /** Listens; resolves with the real address (port 0 = ephemeral). @throws IbpError IBP_ERR_REGISTRY_START. */
  listen(ip: string, port: number): Promise<{ ip: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(new IbpError('IBP_ERR_REGISTRY_START', `cannot listen on ${ip}:${port}: ${err.code ?? err.message} (another process holds the port, or the address is not on this host: check ibms.server in ibms.conf)`, { cause: err }));
      this.#server.once('error', onError);
      this.#server.listen({ host: ip, port, backlog: 511 }, () => {
        this.#server.off('error', onError);
        resolve(this.address);
      });
    });
  }

  /** The address listened on. */
  get address(): { ip: string; port: number } {
    const a = this.#server.address() as AddressInfo | null;
    return { ip: a?.address ?? '', port: a?.port ?? 0 };
  }

  /**
   * Stops taking connections, answers parked long-polls 304 at once, lets requests in flight finish (at most
   * `graceMs`, then cuts them), closes every connection. Idempotent.
   */
  close(graceMs = 10_000): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((r) => this.#server.close(() => r()));
      this.#ctx.waiters.closeAll();
      if (this.#inFlight > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, graceMs);
          this.#idle = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      this.#server.closeAllConnections();
      await closed;
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#inFlight += 1;
    if (this.#closing) res.setHeader('connection', 'close');
    try {
      await this.#route(req, res);
    } catch (err) {
      const e = toIbpError(err);
      const status = statusOf(e);
      if (status >= 500) this.#log.error({ err, method: req.method, url: req.url?.slice(0, 256) }, 'request failed');
      else this.#log.debug({ code: e.code, msg: e.message, method: req.method, url: req.url?.slice(0, 256) }, 'request refused');
      try {
        sendError(res, e);
      } catch {
        res.destroy();
      }
    } finally {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#idle?.();
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    if (rawUrl.length > MAX_URL_CHARS) throw httpError(414, `URL longer than ${MAX_URL_CHARS} characters`);
    let url: URL;
    try {
      url = new URL(rawUrl, 'http://ibms');
    } catch {
      throw httpError(400, 'malformed URL');
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    statedCompressThreshold(req); // a malformed X-IBP-Min-Compress-Size is a 400 before anything else
    if (!path.startsWith(`${API_PREFIX}/`)) throw httpError(404, `no endpoint ${path.slice(0, 128)} (the API is under ${API_PREFIX}/, see docs/registry.md)`);
    const rest = path.slice(API_PREFIX.length + 1);
    if (rest === 'health') {
      if (method !== 'GET') throw httpError(405, 'use GET /v1/health');
      await sendJson(req, res, 200, { ok: true, pid: process.pid, startedAtMs: this.#startedAtMs }, this.#ctx.settings.minCompressSize);
      return;
    }
    if (rest.startsWith('admin/')) {
      await handleAdmin(this.#ctx, req, res, rest.slice('admin/'.length));
      return;
    }
    if (rest === 'view' || rest === 'heartbeat' || rest.startsWith('packages/')) {
      const node = this.#ctx.auth.checkNode(req, method, rawUrl);
      if (rest === 'heartbeat') {
        if (method !== 'POST') throw httpError(405, 'use POST /v1/heartbeat');
        return this.#nodeApi.heartbeat(req, res, node);
      }
      if (method !== 'GET') throw httpError(405, `use GET ${path.slice(0, 128)}`);
      if (rest === 'view') return this.#nodeApi.view(req, res, node, url.searchParams);
      return this.#nodeApi.package(req, res, node, rest.slice('packages/'.length));
    }
    throw httpError(404, `no endpoint ${path.slice(0, 128)} (see docs/registry.md)`);
  }
}
