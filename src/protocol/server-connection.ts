/**
 * `serveConnection`: the server side of one accepted socket. It sniffs the first bytes, hands the socket
 * to the IB2, IB1 or HTTP adapter, and gives the platform one handle to watch and stop the connection.
 *
 *   sniffing ──IB2/IB1/HTTP──▶ serving (adapter) ──▶ closed
 *      └──bad magic / read timeout / peer closed──────▶ closed
 */
import type { Socket } from 'node:net';
import { IbpError, toIbpError } from '../core/errors.js';
import type { AdapterContext, ProtocolAdapter } from './adapter.js';
import { HttpServerAdapter } from './http-server.js';
import { Ib1ServerAdapter } from './ib1-server.js';
import { Ib2ServerAdapter } from './ib2-server.js';
import { CLOSE_LINGER_MS, GOAWAY_GRACE_MS, resolveLimits } from './limits.js';
import type { ProtocolLogger } from './run-transaction.js';
import { sniffProtocol } from './sniff.js';
import { closeSoon } from './socket-io.js';
import type { ProtocolLimits, ProtocolName, TransactionHandler } from './types.js';

export interface ServeConnectionOptions {
  /** The `file/` dir where received request files are stored. */
  fileDir: string;
  limits?: Partial<ProtocolLimits>;
  logger?: ProtocolLogger;
  /** IB2: after GOAWAY, close once nothing has arrived for this long, ms (default 2000). */
  goAwayGraceMs?: number;
  /**
   * Announce the close (see {@link ServerConnection.goAway}) with the response of this connection's n-th
   * transaction, so a long connection moves on and load can spread again (ibas.conf `server.max_conn_tx`).
   * IB1 has no way to announce a close and is not counted. 0 or absent = never.
   */
  maxTransactions?: number;
}

/** The platform's handle on one served connection. */
export interface ServerConnection {
  /** The sniffed protocol; undefined until the first bytes have arrived. */
  readonly protocol: ProtocolName | undefined;
  /**
   * Announce the close: IB2 sends GOAWAY and keeps serving requests already on the wire until the client
   * closes or a grace period passes with nothing in flight; HTTP and IB1 close after the current response,
   * or at once when idle with nothing received. Idempotent.
   */
  goAway(): void;
  /** Close at once (a transaction in progress loses its connection). */
  destroy(): void;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  /** True while a transaction is being received, run or answered (or bytes of one have arrived). */
  readonly inFlight: boolean;
}

const NO_LOG: ProtocolLogger = { warn() {} };

/**
 * Serves one accepted socket until it closes. Never throws for anything the peer sends: malformed input is
 * logged through `logger.warn` with a coded IbpError (`{ err }`), answered with an error where the protocol
 * has one, and the socket is closed.
 * @throws IbpError IBP_ERR_CONFIG_INVALID when a limit is not a positive integer, or maxTransactions not an
 *   integer >= 0 (before touching the socket).
 * @example
 * net.createServer((s) => serveConnection(s, handler, { fileDir: home.file, logger: log }));
 */
export function serveConnection(socket: Socket, handler: TransactionHandler, options: ServeConnectionOptions): ServerConnection {
  return new ServedConnection(socket, handler, options);
}

class ServedConnection implements ServerConnection {
  #socket: Socket;
  #ctx: AdapterContext;
  #protocol: ProtocolName | undefined;
  #adapter: ProtocolAdapter | undefined;
  #sniffed: Buffer[] = [];
  #sniffBytes = 0;
  #sniffTimer: NodeJS.Timeout | undefined;
  #closed: Promise<void>;
  #onSniffData = (chunk: Buffer): void => this.#sniff(chunk);

  constructor(socket: Socket, handler: TransactionHandler, o: ServeConnectionOptions) {
    const limits = resolveLimits(o.limits);
    this.#socket = socket;
    const log = o.logger ?? NO_LOG;
    const maxTx = o.maxTransactions ?? 0;
    if (!Number.isInteger(maxTx) || maxTx < 0) throw new IbpError('IBP_ERR_CONFIG_INVALID', `maxTransactions must be an integer >= 0, got ${maxTx}`);
    this.#ctx = {
      socket,
      handler: maxTx > 0 ? closingAfter(handler, maxTx, () => this.goAway()) : handler,
      fileDir: o.fileDir,
      limits,
      log,
      goAwayGraceMs: o.goAwayGraceMs ?? GOAWAY_GRACE_MS,
      remoteIp: plainIp(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
      goingAway: false,
    };
    socket.on('error', (err) => log.debug?.({ err: toIbpError(err), remote: this.#remote() }, 'socket error'));
    this.#closed = new Promise((resolve) => {
      if (socket.destroyed) resolve();
      else socket.once('close', () => resolve());
    });
    socket.once('close', () => this.#clearSniffTimer());
    if (socket.destroyed) return;
    socket.setNoDelay(true);
    this.#sniffTimer = setTimeout(() => this.#sniffTimeout(), limits.readTimeoutMs);
    this.#sniffTimer.unref();
    socket.on('data', this.#onSniffData);
  }

  get protocol(): ProtocolName | undefined {
    return this.#protocol;
  }

  get closed(): Promise<void> {
    return this.#closed;
  }

  get inFlight(): boolean {
    return this.#adapter ? this.#adapter.inFlight : this.#sniffBytes > 0;
  }

  goAway(): void {
    if (this.#adapter) {
      this.#adapter.goAway();
      return;
    }
    this.#ctx.goingAway = true;
    if (this.#sniffBytes === 0) {
      // A fresh connection (e.g. handed over just as the worker retires): its first request may already be on
      // the wire, and dropping it would fail a call. Wait a short grace for the first bytes; what arrives is
      // served by an adapter that starts out going away; if nothing arrives, close quietly.
      this.#clearSniffTimer();
      this.#sniffTimer = setTimeout(() => {
        if (this.#sniffBytes === 0) this.#close();
        else this.#sniffTimeout();
      }, Math.min(this.#ctx.goAwayGraceMs, this.#ctx.limits.readTimeoutMs));
      this.#sniffTimer.unref();
    }
  }

  destroy(): void {
    this.#clearSniffTimer();
    this.#socket.destroy();
  }

  #sniff(chunk: Buffer): void {
    this.#sniffed.push(chunk);
    this.#sniffBytes += chunk.length;
    const bytes = this.#sniffed.length === 1 ? chunk : Buffer.concat(this.#sniffed, this.#sniffBytes);
    const r = sniffProtocol(bytes);
    if (r === 'more') return;
    this.#socket.off('data', this.#onSniffData);
    this.#clearSniffTimer();
    this.#sniffed = [];
    if (r === 'bad') {
      const got = bytes.subarray(0, 8).toString('hex');
      const err = new IbpError('IBP_ERR_PROTO_BAD_MAGIC', `the connection does not start with IB2, IB1 or an HTTP method (got ${got})`, {
        details: { got },
      });
      this.#ctx.log.warn({ err, remote: this.#remote() }, 'unknown protocol; closing the connection');
      this.#close();
      return;
    }
    const s = this.#socket;
    s.pause();
    s.unshift(bytes);
    this.#protocol = r;
    this.#adapter = r === 'IB2' ? new Ib2ServerAdapter(this.#ctx) : r === 'IB1' ? new Ib1ServerAdapter(this.#ctx) : new HttpServerAdapter(this.#ctx);
    if (r === 'HTTP') s.resume();
  }

  #sniffTimeout(): void {
    this.#sniffTimer = undefined;
    if (this.#adapter || this.#socket.destroyed) return;
    const err = new IbpError('IBP_ERR_PROTO_READ_TIMEOUT',
      `${this.#sniffBytes} bytes within ${this.#ctx.limits.readTimeoutMs} ms, not enough to tell the protocol`);
    this.#ctx.log.warn({ err, remote: this.#remote() }, 'no protocol sniffed in time; closing the connection');
    this.#socket.off('data', this.#onSniffData);
    this.#close();
  }

  #close(): void {
    this.#clearSniffTimer();
    closeSoon(this.#socket, undefined, Math.min(CLOSE_LINGER_MS, this.#ctx.limits.readTimeoutMs));
  }

  #clearSniffTimer(): void {
    if (this.#sniffTimer) clearTimeout(this.#sniffTimer);
    this.#sniffTimer = undefined;
  }

  #remote(): string {
    return `${this.#ctx.remoteIp}:${this.#ctx.remotePort}`;
  }
}

/**
 * `handler` as seen by one connection that goes away with the response of its `max`-th transaction: GOAWAY
 * (IB2) is written before that response, `Connection: close` (HTTP) goes in its headers. Every other member
 * is the handler's own, called on the handler.
 */
function closingAfter(handler: TransactionHandler, max: number, goAway: () => void): TransactionHandler {
  let answered = 0;
  const run: TransactionHandler['run'] = (tx, reply) => {
    let counted = tx.protocol === 'IB1';
    return handler.run(tx, (outcome) => {
      if (!counted) {
        counted = true;
        if (++answered === max) goAway();
      }
      reply(outcome);
    });
  };
  type Fn = (...a: unknown[]) => unknown;
  const bound = new WeakMap<Fn, Fn>();
  return new Proxy(handler, {
    get(target, prop) {
      if (prop === 'run') return run;
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      let b = bound.get(v as Fn);
      if (b === undefined) bound.set(v as Fn, (b = (v as Fn).bind(target)));
      return b;
    },
  });
}

function plainIp(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
