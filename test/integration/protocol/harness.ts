/**
 * Test harness for the protocol layer: a real `net` server on 127.0.0.1 port 0 running `serveConnection`
 * with an in-test handler (the platform's part), a recording logger, and raw sockets to send bad bytes.
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../../src/protocol/ib2-decoder.js';
import {
  serveConnection, type IncomingTransaction, type PreRequest, type ProtocolLimits, type ProtocolName, type SecurityFlags,
  type ServerConnection, type TransactionHandler, type TransactionOutcome, type NodeKeys, DEFAULT_LIMITS,
} from '../../../src/protocol/index.js';

export type App = (tx: IncomingTransaction, reply: (o: TransactionOutcome) => void) => Promise<void>;

export interface Gate {
  promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

const EMPTY = Buffer.alloc(0);

/** The test server's node name and keys: a client passes them in `Ib2CallRequest` when sign or encrypt is on. */
export const TEST_NODE = 'SRV';
export const TEST_KEYS: NodeKeys = { keyExp: 'test-node-key', newKeyEnableAt: 0, oldKeyDisableAt: 0 };

/** The apps every test server knows. */
export const DEFAULT_APPS: Record<string, App> = {
  async echo(tx, reply) { reply({ body: tx.body, responseFiles: [] }); },
  async echo_files(tx, reply) { reply({ body: tx.body, responseFiles: tx.requestFiles }); },
  async meta(tx, reply) {
    const { protocol, clientNode, clientIp, app, jnlsno, trace } = tx;
    reply({ body: Buffer.from(JSON.stringify({ protocol, clientNode, clientIp, app, jnlsno, trace, files: tx.requestFiles.map((f) => basename(f)) })), responseFiles: [] });
  },
  async fail() { throw new Error('boom'); },
  async fail_coded(_tx, reply) {
    reply({ error: new IbpError('IBP_ERR_SERVER_APP_FAILED', 'bad input', { details: { field: 'amount' } }), body: EMPTY, responseFiles: [] });
  },
  async noreply() {},
};

export interface LogRecord {
  level: 'warn' | 'debug';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

export class TestLog {
  records: LogRecord[] = [];
  #waiters: Array<() => void> = [];
  warn(obj: object, msg?: string): void { this.#add('warn', obj, msg); }
  debug(obj: object, msg?: string): void { this.#add('debug', obj, msg); }
  #add(level: 'warn' | 'debug', obj: object, msg?: string): void {
    this.records.push({ level, obj: obj as Record<string, unknown>, msg });
    for (const w of this.#waiters.splice(0)) w();
  }
  /** Codes of the errors logged at warn level. */
  warnCodes(): string[] {
    return this.records.filter((r) => r.level === 'warn').map((r) => (r.obj.err as IbpError | undefined)?.code ?? '(no err)');
  }
  /** Waits until a warning with `code` has been logged (at record index `since` or later); returns its error. */
  async waitWarn(code: string, ms = 5000, since = 0): Promise<IbpError> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.records.slice(since).find((r) => r.level === 'warn' && (r.obj.err as IbpError | undefined)?.code === code);
      if (hit) return hit.obj.err as IbpError;
      const left = deadline - Date.now();
      if (left <= 0) assert(false, `no warning ${code} within ${ms} ms; got ${JSON.stringify(this.warnCodes())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}

function assert(ok: boolean, msg: string): asserts ok {
  if (!ok) throw new Error(msg);
}

export interface ServerOptions {
  apps?: Record<string, App>;
  check?: (pre: PreRequest, protocol: ProtocolName, conn: ServerConnection) => IbpError | undefined;
  limits?: Partial<ProtocolLimits>;
  securityFlags?: SecurityFlags;
  /** The server node's keys (default {@link TEST_KEYS}; used when sign or encrypt is on). */
  keys?: NodeKeys;
  /** Bodies of at least this many bytes are compressed when compress is on (default 0). */
  minCompressSize?: number;
  goAwayGraceMs?: number;
  load?: { busy: number; total: number };
  /** Record every chunk each connection receives (IB2/IB1 tests only: a 'data' listener changes how node:http reads). */
  tap?: boolean;
}

export interface TestServer {
  port: number;
  fileDir: string;
  log: TestLog;
  /** Every served connection, in accept order. */
  conns: ServerConnection[];
  /** Every chunk each connection received, in order (a tap next to the adapter). */
  taps: Buffer[][];
  checks: PreRequest[];
  runs: IncomingTransaction[];
  limits: ProtocolLimits;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions = {}): Promise<TestServer> {
  const fileDir = mkdtempSync(join(tmpdir(), 'ibp-proto-'));
  const log = new TestLog();
  const apps = { ...DEFAULT_APPS, ...o.apps };
  const conns: ServerConnection[] = [];
  const taps: Buffer[][] = [];
  const checks: PreRequest[] = [];
  const runs: IncomingTransaction[] = [];
  const sockets = new Set<net.Socket>();
  let current: ServerConnection | undefined;
  const handler: TransactionHandler = {
    securityFlags: o.securityFlags ?? { sign: false, compress: false, encrypt: false },
    load: () => o.load ?? { busy: 1, total: 4 },
    securityContext: () => ({ keys: o.keys ?? TEST_KEYS, minCompressSize: o.minCompressSize ?? 0, node: TEST_NODE }),
    check(pre, protocol) {
      checks.push(pre);
      if (o.check) {
        const r = o.check(pre, protocol, current!);
        if (r) return r;
      }
      if (pre.app === 'busy') return new IbpError('IBP_ERR_SERVER_BUSY', 'no idle worker', { retryable: true });
      if (!(pre.app in apps)) return new IbpError('IBP_ERR_SERVER_APP_NOT_FOUND', `app ${pre.app} is not served here`);
      return undefined;
    },
    async run(tx, reply) {
      runs.push(tx);
      await apps[tx.app]!(tx, reply);
    },
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const tap: Buffer[] = [];
    taps.push(tap);
    if (o.tap) socket.on('data', (c: Buffer) => tap.push(Buffer.from(c)));
    const conn = serveConnection(socket, {
      ...handler,
      securityFlags: handler.securityFlags,
      check: (pre, protocol) => {
        current = conn;
        return handler.check(pre, protocol);
      },
    }, { fileDir, limits: o.limits, logger: log, goAwayGraceMs: o.goAwayGraceMs });
    conns.push(conn);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port, fileDir, log, conns, taps, checks, runs,
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(fileDir, { recursive: true, force: true });
    },
  };
}

/** A raw client socket that records everything it receives. */
export class RawPeer {
  socket: net.Socket;
  data = Buffer.alloc(0);
  ended = false;
  #waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => { this.data = Buffer.concat([this.data, d]); this.#wake(); });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      const done = (): void => { this.ended = true; this.#wake(); resolve(); };
      socket.once('end', done);
      socket.once('close', done);
    });
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  write(b: Buffer | string): void {
    this.socket.write(b);
  }

  /** Frames received so far (IB2). */
  frames(): Ib2Frame[] {
    const out: Ib2Frame[] = [];
    new Ib2FrameDecoder(DEFAULT_LIMITS).push(this.data, out);
    return out;
  }

  /** Waits until `pred` holds (checked on every chunk and on close) or `ms` pass. */
  async waitFor(pred: (p: RawPeer) => boolean, ms: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what} not met within ${ms} ms (received ${this.data.length} bytes, ended ${this.ended})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Waits for the server to close the connection; returns how long it took. */
  async waitClosed(ms: number): Promise<number> {
    const t0 = Date.now();
    await this.waitFor((p) => p.ended, ms, 'server closing the connection');
    return Date.now() - t0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** Polls `cond` each event-loop turn until it holds or `ms` pass (bounded). */
export async function until(cond: () => boolean, ms: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
