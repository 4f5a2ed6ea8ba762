/**
 * The client library (the original's ibac, SPEC §2.4, §6.3): an environment reads the local config replica and
 * calls transactions on server nodes, over short connections (`env.call`, the original's IBACRequester) or a
 * long connection (`env.connect(node)` then `conn.call` many times).
 *
 * @example
 * ```ts
 * import { IbacEnv } from 'ibp';
 * await using env = await IbacEnv.create();                  // $IBP_HOME/etc/ibma.conf + run/ibma/
 * const r = await env.call('ibp_test_echo', { hello: 1 });   // node = the app's server_node
 * console.log(r.json());
 * ```
 */
import { isAbsolute, join } from 'node:path';
import { loadIbmaConf } from '../core/config/index.js';
import { IbpError, type CommStatus } from '../core/errors.js';
import { ibpHome, resolveHomeRoot, type IbpHome } from '../core/home.js';
import { ConfigReplica, LoadTable, type ConfigSnapshot } from '../agent/index.js';
import { Ib2Connection, type CallResult, type NodeKeys } from '../protocol/index.js';
import { HostChooser, type ChosenHost } from './host-choice.js';

/** A newer config snapshot is looked for at most this often (one stat of the index). */
export const REFRESH_INTERVAL_MS = 100;

export type MessageBody = Buffer | Uint8Array | string | object;

export interface IbacEnvOptions {
  /** The IBP home (default $IBP_HOME, else $HOME). */
  home?: string;
  /**
   * The agent config the original's IBACCreateEnvirment takes (a bare name is in `<home>/etc`, e.g.
   * 'ibma.conf'). When given, it is loaded and its `this_node` must be the node of the local replica.
   */
  config?: string;
}

export interface CallOptions {
  /** Server node; default: the app's `server_node`. */
  node?: string;
  /** Request files (paths; at most 4). */
  files?: string[];
  /** Whole-call timeout in seconds; default: the app's `timeout`. */
  timeoutSec?: number;
  /** Communication journal number; default: generated. */
  jnlsno?: string;
  /** Dye (trace) this transaction. */
  trace?: boolean;
}

/** A successful call's result. */
export class CallResponse {
  readonly body: Buffer;
  /** Paths of the response files, stored in this home's file/. */
  readonly files: string[];
  readonly load: { busy: number; total: number };
  /** The host that answered. */
  readonly host: { node: string; ip: string; port: number };
  readonly jnlsno: string;

  constructor(r: CallResult, host: ChosenHost, jnlsno: string) {
    this.body = r.body;
    this.files = r.responseFiles;
    this.load = r.load;
    this.host = { node: host.node, ip: host.ip, port: host.port };
    this.jnlsno = jnlsno;
  }

  text(): string {
    return this.body.toString('utf8');
  }

  json<T = unknown>(): T {
    return JSON.parse(this.body.toString('utf8')) as T;
  }
}

export function toBody(body: MessageBody): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(JSON.stringify(body));
}

let jnlSeq = 0;
function newJnlsno(): string {
  jnlSeq = (jnlSeq + 1) % 1_000_000;
  return `${process.pid.toString(36)}${Date.now().toString(36)}${jnlSeq.toString(36).padStart(4, '0')}`;
}

/** A client environment (IBACCreateEnvirment / IBACDestroyEnvirment). */
export class IbacEnv {
  readonly home: IbpHome;
  #replica: ConfigReplica;
  #loads: LoadTable;
  #chooser: HostChooser;
  #commStatus: CommStatus | 'OK' = 'OK';
  #connections = new Set<IbacConnection>();
  #lastLoads = new Map<string, number>();
  #lastRefreshMs = -Infinity;
  #closed = false;

  private constructor(home: IbpHome, replica: ConfigReplica, loads: LoadTable) {
    this.home = home;
    this.#replica = replica;
    this.#loads = loads;
    this.#chooser = new HostChooser(loads);
  }

  /** Opens the local config replica of the home and the shared load table. */
  static async create(options: IbacEnvOptions = {}): Promise<IbacEnv> {
    const home = ibpHome(options.home ?? resolveHomeRoot());
    const replica = ConfigReplica.open(home.replica);
    if (options.config !== undefined) {
      const path = isAbsolute(options.config) || options.config.includes('/') ? options.config : join(home.etc, options.config);
      let thisNode: string;
      try {
        thisNode = loadIbmaConf(path).ibma.this_node;
      } catch (err) {
        replica.close();
        throw err;
      }
      if (thisNode !== replica.snapshot.thisNode) {
        replica.close();
        throw new IbpError('IBP_ERR_CONFIG_INVALID', `${path}: this_node is ${thisNode} but the local config replica of ${home.root} is for node ${replica.snapshot.thisNode}`);
      }
    }
    const loads = LoadTable.open(join(home.replica, 'load.table'));
    return new IbacEnv(home, replica, loads);
  }

  /** The comm status of the last call (IBACGetCommStatus): 'ON_SENDING' after a failure means in doubt. */
  get commStatus(): CommStatus | 'OK' {
    return this.#commStatus;
  }

  /** The current config snapshot (switched to a newer one between calls). */
  get snapshot(): ConfigSnapshot {
    return this.#replica.snapshot;
  }

  /** Switches to a newer config snapshot if the agent wrote one; checks at most every REFRESH_INTERVAL_MS. */
  #refreshReplica(): void {
    const now = performance.now();
    if (now - this.#lastRefreshMs < REFRESH_INTERVAL_MS) return;
    this.#lastRefreshMs = now;
    this.#replica.refresh();
  }

  /** @internal */
  setCommStatus(s: CommStatus | 'OK'): void {
    this.#commStatus = s;
  }

  /** @internal Resolves node, app and timeout for a call, checking the replica. */
  resolveCall(app: string, options: CallOptions): { node: string; timeoutMs: number } {
    this.#assertOpen();
    if (typeof app !== 'string' || app.length === 0) throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', 'app must be a non-empty string', { commStatus: 'NOT_SENT' });
    this.#refreshReplica();
    const snap = this.#replica.snapshot;
    const appCfg = snap.app(app);
    if (!appCfg) throw new IbpError('IBP_ERR_REPLICA_UNKNOWN_APP', `app ${app} is not in the local config of node ${snap.thisNode}`, { commStatus: 'NOT_SENT' });
    if (appCfg.invalid) throw new IbpError('IBP_ERR_CLIENT_APP_INVALID', `app ${app} is marked invalid`, { commStatus: 'NOT_SENT' });
    const node = options.node ?? appCfg.serverNode;
    if (!node) throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `no node given and app ${app} has no server_node`, { commStatus: 'NOT_SENT' });
    const timeoutSec = options.timeoutSec ?? appCfg.timeout;
    if (!(timeoutSec > 0)) throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `timeoutSec must be > 0, got ${timeoutSec}`, { commStatus: 'NOT_SENT' });
    return { node, timeoutMs: timeoutSec * 1000 };
  }

  /**
   * @internal Connects to the best host of `node`: the valid host with the lowest load; a host whose connect
   * fails is suspended for retry_connect_timeval for every local process and the next one is tried.
   */
  async connectBest(node: string, deadline: number): Promise<{ conn: Ib2Connection; host: ChosenHost }> {
    const snap = this.#replica.snapshot;
    const n = snap.node(node);
    if (!n) throw new IbpError('IBP_ERR_REPLICA_UNKNOWN_NODE', `node ${node} is not in the local config of node ${snap.thisNode}`, { commStatus: 'NOT_SENT' });
    if (n.invalid) throw new IbpError('IBP_ERR_CLIENT_NODE_INVALID', `node ${node} is marked invalid`, { commStatus: 'NOT_SENT' });
    const candidates = this.#chooser.order(n);
    if (candidates.length === 0) throw new IbpError('IBP_ERR_CLIENT_NO_HOST', `node ${node} has no usable host (invalid, client-only or suspended)`, { commStatus: 'NOT_SENT' });
    let last: unknown;
    for (const host of candidates) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const conn = await Ib2Connection.connect({
          host: host.ip,
          port: host.port,
          connectTimeoutMs: Math.min(snap.connectingTimeoutSec * 1000, remaining),
          fileDir: this.home.file,
        });
        return { conn, host };
      } catch (err) {
        last = err;
        this.#loads.suspend(host.key, Date.now() + snap.retryConnectTimevalSec * 1000);
      }
    }
    if (last instanceof IbpError) throw last;
    throw new IbpError('IBP_ERR_CLIENT_CONNECT_TIMEOUT', `no host of node ${node} could be reached in time`, { commStatus: 'NOT_SENT', cause: last });
  }

  /**
   * @internal What a call to `node` needs to protect its messages when the server proposes sign/compress/encrypt
   * (docs/protocol.md §Security): the node's keys and the compression threshold from the replica.
   */
  securityOf(node: string): { keys: NodeKeys | undefined; node: string; minCompressSize: number } {
    const snap = this.#replica.snapshot;
    return { keys: snap.node(node), node, minCompressSize: snap.minCompressSize };
  }

  /** @internal {@link securityOf} for the node that has host `ip`:`port` (a call made by address, e.g. 2PC phase two). */
  securityAt(ip: string, port: number): { keys: NodeKeys | undefined; node: string; minCompressSize: number } {
    for (const n of this.#replica.snapshot.nodes()) {
      if (n.hosts.some((h) => h.ip === ip && h.port === port)) return this.securityOf(n.name);
    }
    return { keys: undefined, node: '', minCompressSize: this.#replica.snapshot.minCompressSize };
  }

  /** @internal */
  recordLoad(host: ChosenHost, load: { busy: number; total: number }): void {
    // Write the shared table only when this process saw the load change: one pwrite less per call.
    const packed = load.busy * 65536 + load.total;
    if (this.#lastLoads.get(host.key) === packed) return;
    this.#lastLoads.set(host.key, packed);
    this.#loads.recordLoad(host.key, load.busy, load.total);
  }

  /**
   * Calls `app` over a short connection: connect, call, disconnect (IBACRequester). Rejects with an IbpError
   * whose `commStatus` says whether the call is in doubt (`ON_SENDING`).
   */
  async call(app: string, body: MessageBody, options: CallOptions = {}): Promise<CallResponse> {
    this.#commStatus = 'NOT_SENT';
    const { node, timeoutMs } = this.resolveCall(app, options);
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const { conn, host } = await this.connectBest(node, deadline);
      try {
        return await runCall(this, conn, host, node, app, body, options, deadline);
      } catch (err) {
        if (!(await mayCallAgain(err, attempt, deadline))) throw err;
      } finally {
        void conn.close().catch(() => undefined);
      }
    }
  }

  /** Opens a long connection to `node` (IBACConnect). */
  async connect(node: string): Promise<IbacConnection> {
    this.#assertOpen();
    const c = new IbacConnection(this, node);
    this.#connections.add(c);
    return c;
  }

  /** @internal */
  forget(c: IbacConnection): void {
    this.#connections.delete(c);
  }

  /** Closes every long connection and releases the replica (IBACDestroyEnvirment). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#connections].map((c) => c.close()));
    this.#replica.close();
    this.#loads.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new IbpError('IBP_ERR_CLIENT_NOT_CONNECTED', 'the client environment is closed', { commStatus: 'NOT_SENT' });
  }
}

/** Times a call is made again on a new connection after its connection broke before the request left. */
const LOST_BEFORE_SENDING_RETRIES = 4;
/** Pause before the n-th new attempt: n × this (the server side may be replacing a worker). */
const LOST_BEFORE_SENDING_BACKOFF_MS = 25;

/**
 * A connection that broke before the request was written (a worker that died between the connection's hand-over
 * and its pre-response, say) ran nothing: the call is made again on a new connection, within its deadline.
 */
async function mayCallAgain(err: unknown, attempt: number, deadline: number): Promise<boolean> {
  const again = err instanceof IbpError && err.code === 'IBP_ERR_CLIENT_CONNECTION_LOST' && err.commStatus === 'NOT_SENT'
    && attempt < LOST_BEFORE_SENDING_RETRIES && Date.now() + (attempt + 1) * LOST_BEFORE_SENDING_BACKOFF_MS < deadline;
  if (again) await new Promise((r) => setTimeout(r, (attempt + 1) * LOST_BEFORE_SENDING_BACKOFF_MS));
  return again;
}

async function runCall(
  env: IbacEnv, conn: Ib2Connection, host: ChosenHost, node: string, app: string, body: MessageBody, options: CallOptions, deadline: number,
): Promise<CallResponse> {
  const jnlsno = options.jnlsno ?? newJnlsno();
  const timeoutMs = deadline - Date.now();
  if (timeoutMs <= 0) {
    env.setCommStatus('NOT_SENT');
    throw new IbpError('IBP_ERR_CLIENT_TIMEOUT', `app ${app}: the timeout passed before the request was sent`, { commStatus: 'NOT_SENT' });
  }
  let buf: Buffer;
  try {
    buf = toBody(body);
  } catch (err) {
    env.setCommStatus('NOT_SENT');
    throw new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', `app ${app}: the body must be a Buffer, a string or a JSON value: ${(err as Error).message}`, {
      commStatus: 'NOT_SENT', cause: err,
    });
  }
  try {
    const r = await conn.call({
      clientNode: env.snapshot.thisNode,
      app,
      jnlsno,
      trace: options.trace ?? false,
      body: buf,
      files: options.files ?? [],
      timeoutMs,
      ...env.securityOf(node),
    });
    env.recordLoad(host, r.load);
    env.setCommStatus('OK');
    return new CallResponse(r, host, jnlsno);
  } catch (err) {
    env.setCommStatus(err instanceof IbpError && err.commStatus ? err.commStatus : 'ON_SENDING');
    throw err;
  }
}

/**
 * A long connection to a node (IBACConnect … IBACDisconnect). Calls run one at a time. When the server moves
 * the connection on (GOAWAY: recycle, upgrade, stop) or it broke between calls, the next call reconnects to the
 * node's best host first — before anything is sent, so it is never an error and never in doubt.
 */
export class IbacConnection {
  readonly node: string;
  #env: IbacEnv;
  #conn: Ib2Connection | undefined;
  #host: ChosenHost | undefined;
  #closed = false;

  /** @internal use `env.connect(node)` */
  constructor(env: IbacEnv, node: string) {
    this.#env = env;
    this.node = node;
  }

  /** The host this connection is on (undefined before the first call). */
  get host(): ChosenHost | undefined {
    return this.#host;
  }

  /** Calls `app` on this connection's node (IBACSendRequestAndReceiveResponse). */
  async call(app: string, body: MessageBody, options: Omit<CallOptions, 'node'> = {}): Promise<CallResponse> {
    this.#env.setCommStatus('NOT_SENT');
    if (this.#closed) throw new IbpError('IBP_ERR_CLIENT_NOT_CONNECTED', `connection to ${this.node} is closed`, { commStatus: 'NOT_SENT' });
    const { timeoutMs } = this.#env.resolveCall(app, { ...options, node: this.node });
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (!this.#conn || this.#conn.closed || this.#conn.goingAway) {
        if (this.#conn) void this.#conn.close().catch(() => undefined);
        this.#conn = undefined;
        const { conn, host } = await this.#env.connectBest(this.node, deadline);
        this.#conn = conn;
        this.#host = host;
      }
      try {
        return await runCall(this.#env, this.#conn, this.#host!, this.node, app, body, options, deadline);
      } catch (err) {
        if (!(await mayCallAgain(err, attempt, deadline))) throw err;
        void this.#conn?.close().catch(() => undefined);
        this.#conn = undefined;
      }
    }
  }

  /** Disconnects (IBACDisconnect). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#env.forget(this);
    await this.#conn?.close().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
