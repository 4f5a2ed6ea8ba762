/**
 * The node half of the registry API (signed by the node's RSA key): the view long-poll with keys encrypted
 * for the caller, package downloads, heartbeats.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { IbpError } from '../core/errors.js';
import { type ApiContext, pidOf, remoteOf } from './api-context.js';
import { httpError, readJsonBody, sendBytes, sendJson, sendNotModified, shouldGzip } from './http-io.js';
import type { PublishedView } from './store/index.js';
import { ViewEncoder } from './view-encoder.js';
import { DEFAULT_VIEW_WAIT_SEC, HEADER_INDEX, HEADER_SHA256, MAX_VIEW_WAIT_SEC, type HeartbeatBody } from './wire.js';

/**
 * The gzip'd view reply of a node, made once per (node, version, node key) and reused by later requests of
 * that node. The plain JSON is not kept: it is cheap to make again from the encoder's parts, and a node
 * rarely asks twice for one version (1,000 kept replies would hold ~40 MB).
 */
interface EncodedView {
  version: number;
  key: KeyObject;
  gz: Buffer;
  /** Length of the plain JSON (the caller's compress threshold applies to it). */
  plainBytes: number;
}

const heartbeatSchema = z.strictObject({
  role: z.enum(['ibma', 'ibas']),
  host: z.strictObject({ ip: z.string().min(1).max(64), port: z.number().int().min(-65535).max(65535) }),
  pid: z.number().int().min(0).max(2 ** 31),
  viewVersion: z.number().int().min(0).optional(),
  load: z.strictObject({ busy: z.number().int().min(0), total: z.number().int().min(0) }).optional(),
  stats: z.strictObject({ tps: z.number().min(0).optional(), txCount: z.number().int().min(0).optional() }).optional(),
});

/** The node endpoints of one worker. */
export class NodeApi {
  readonly #ctx: ApiContext;
  readonly #encoded = new Map<string, EncodedView>();
  /** JSON of shared view parts and key encryptions, kept across requests and versions (view-encoder.ts). */
  readonly #encoder = new ViewEncoder();

  constructor(ctx: ApiContext) {
    this.#ctx = ctx;
  }

  /** `GET /v1/view?index=V&wait=S`. */
  async view(req: IncomingMessage, res: ServerResponse, node: string, query: URLSearchParams): Promise<void> {
    const index = intParam(query, 'index', Number.MAX_SAFE_INTEGER);
    const waitSec = Math.min(intParam(query, 'wait', 24 * 3600) ?? DEFAULT_VIEW_WAIT_SEC, MAX_VIEW_WAIT_SEC);
    res.once('close', this.#ctx.sessions.viewPoll(node, remoteOf(req), pidOf(req), index)); // a parked poll keeps the session live
    const store = this.#ctx.store;
    if (store.published(node) === undefined) {
      throw new IbpError('IBP_ERR_REGISTRY_NOT_PUBLISHED', `no view was ever distributed to node ${node}: add it to a project and run ibms -a distribute_config (or -a download_config --node ${node})`);
    }
    const newer = (): PublishedView | undefined => {
      const v = store.published(node);
      return v !== undefined && (index === undefined || v.version > index) ? v : undefined;
    };
    let view = newer();
    if (view === undefined && waitSec > 0) {
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      res.once('close', onClose);
      const outcome = await this.#ctx.waiters.wait(node, waitSec * 1000, gone.signal);
      res.off('close', onClose);
      if (outcome === 'published') view = newer();
    }
    if (view === undefined) {
      sendNotModified(res);
      return;
    }
    await this.#sendView(req, res, node, view);
  }

  /** `GET /v1/packages/<bin>`: `bin` must be a package of the caller's published view. */
  async package(req: IncomingMessage, res: ServerResponse, node: string, binPart: string): Promise<void> {
    let bin: string;
    try {
      bin = decodeURIComponent(binPart);
    } catch {
      throw httpError(400, 'package name is not valid URL encoding');
    }
    const view = this.#ctx.store.published(node);
    const known = view?.packages.find((p) => p.bin === bin);
    if (known === undefined || bin.includes('/') || bin.includes('\\') || bin.startsWith('.')) {
      throw new IbpError('IBP_ERR_REGISTRY_PACKAGE', `package ${JSON.stringify(bin.slice(0, 256))} is not in the published view of node ${node}`);
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.#ctx.settings.homeRoot, 'so', bin));
    } catch (err) {
      throw new IbpError('IBP_ERR_REGISTRY_PACKAGE', `package ${bin} is missing in the registry's so/ (${(err as NodeJS.ErrnoException).code ?? 'error'}): copy it there`, { cause: err });
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    await sendBytes(req, res, 200, bytes, this.#ctx.settings.minCompressSize, {
      'content-type': 'application/octet-stream',
      [HEADER_SHA256]: sha,
    });
  }

  /** `POST /v1/heartbeat`. */
  async heartbeat(req: IncomingMessage, res: ServerResponse, node: string): Promise<void> {
    const body = await readJsonBody(req, this.#ctx.settings.maxNodeBodyBytes);
    const r = heartbeatSchema.safeParse(body);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw httpError(400, `bad heartbeat at ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'} (expected {role:'ibma'|'ibas', host:{ip,port}, pid, viewVersion?, load?, stats?})`);
    }
    this.#ctx.sessions.heartbeat(node, remoteOf(req), r.data as HeartbeatBody);
    await sendJson(req, res, 200, { ok: true, serverTimeMs: Date.now() }, this.#ctx.settings.minCompressSize);
  }

  /** Drops kept replies of these nodes (their view changed). */
  forget(nodes: readonly string[]): void {
    for (const n of nodes) this.#encoded.delete(n);
  }

  async #sendView(req: IncomingMessage, res: ServerResponse, node: string, view: PublishedView): Promise<void> {
    const key = this.#ctx.auth.publicKey(node);
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', [HEADER_INDEX]: String(view.version) };
    const kept = this.#encoded.get(node);
    if (kept !== undefined && kept.version === view.version && kept.key === key && shouldGzip(req, kept.plainBytes, this.#ctx.settings.minCompressSize)) {
      send(res, { ...headers, 'content-encoding': 'gzip', vary: 'accept-encoding' }, kept.gz);
      return;
    }
    const json = this.#encoder.encode(view, node, key);
    if (shouldGzip(req, json.length, this.#ctx.settings.minCompressSize)) {
      const gz = gzipSync(json);
      this.#encoded.set(node, { version: view.version, key, gz, plainBytes: json.length });
      send(res, { ...headers, 'content-encoding': 'gzip', vary: 'accept-encoding' }, gz);
    } else send(res, headers, json);
  }
}

function send(res: ServerResponse, headers: Record<string, string>, body: Buffer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, { ...headers, 'content-length': String(body.length) });
  res.end(body);
}

/** A non-negative integer query parameter, undefined when absent. @throws IBP_ERR_REGISTRY_HTTP 400. */
function intParam(q: URLSearchParams, name: string, max: number): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d{1,16}$/.test(v) || Number(v) > max) throw httpError(400, `query parameter ${name}=${JSON.stringify(v.slice(0, 32))}: expected an integer 0..${max}`);
  return Number(v);
}
