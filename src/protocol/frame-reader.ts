/**
 * Pull-style reading of frames from a socket: `await reader.next(...)` returns the next whole frame.
 * Backpressure: while decoded frames wait for a consumer the socket is paused, so at most one socket chunk
 * plus the stream's high-water mark is held beyond the frame being assembled. Timeouts: an idle wait
 * (between transactions) turns into a read wait the moment the first byte of a frame arrives.
 */
import type { Socket } from 'node:net';
import { IbpError } from '../core/errors.js';
import type { IncrementalDecoder } from './ib2-decoder.js';

export interface NextOptions {
  /** Wait this long for the first byte of a frame, then resolve `null` (idle). Omit for a read wait. */
  idleMs?: number;
  /** Time allowed for the whole frame (from the call, or from its first byte after an idle wait). */
  readMs: number;
}

interface Waiter<F> {
  resolve(f: F | null): void;
  reject(e: IbpError): void;
  timer: NodeJS.Timeout | undefined;
  idle: boolean;
  readMs: number;
}

export class FrameReader<F> {
  #socket: Socket;
  #decoder: IncrementalDecoder<F>;
  #intercept: ((f: F) => boolean) | undefined;
  #queue: F[] = [];
  #waiter: Waiter<F> | undefined;
  #failure: IbpError | undefined;
  #ended = false;
  #scratch: F[] = [];

  /**
   * @param intercept sees every frame first; returning true consumes it (used for GOAWAY, and for frames
   *   that arrive when no exchange is running).
   */
  constructor(socket: Socket, decoder: IncrementalDecoder<F>, intercept?: (f: F) => boolean) {
    this.#socket = socket;
    this.#decoder = decoder;
    this.#intercept = intercept;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('close', () => this.#onEnd());
  }

  /** True while bytes of an incomplete frame are held or whole frames wait to be read. */
  get pending(): boolean {
    return this.#decoder.partial || this.#queue.length > 0;
  }

  /** The next frame; `null` when an idle wait expired with no byte received. Rejects with a coded IbpError. */
  next(opts: NextOptions): Promise<F | null> {
    if (this.#waiter) return Promise.reject(new IbpError('IBP_ERR_INTERNAL', 'FrameReader.next called twice'));
    if (this.#queue.length > 0) {
      const f = this.#queue.shift()!;
      if (this.#queue.length === 0 && !this.#failure && !this.#ended) this.#socket.resume();
      return Promise.resolve(f);
    }
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.reject(this.#closedError());
    return new Promise<F | null>((resolve, reject) => {
      const idle = opts.idleMs !== undefined && !this.#decoder.partial;
      const w: Waiter<F> = { resolve, reject, timer: undefined, idle, readMs: opts.readMs };
      this.#waiter = w;
      this.#arm(w, idle ? opts.idleMs! : opts.readMs);
      this.#socket.resume();
    });
  }

  /** Restarts an idle wait in progress with a new bound (used when GOAWAY shortens it to the grace period). */
  rearmIdle(idleMs: number): void {
    const w = this.#waiter;
    if (w && w.idle) this.#arm(w, idleMs);
  }

  /** Fails the current and every later read with `err` (the caller then closes the socket). */
  abort(err: IbpError): void {
    if (!this.#failure) this.#failure = err;
    this.#settle(undefined, err);
  }

  #arm(w: Waiter<F>, ms: number): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      if (this.#waiter !== w) return;
      if (w.idle) {
        this.#settle(null);
      } else {
        const err = new IbpError('IBP_ERR_PROTO_READ_TIMEOUT', `no complete frame within ${w.readMs} ms`, {
          details: { timeoutMs: w.readMs, midFrame: this.#decoder.partial },
        });
        this.#failure = err;
        this.#settle(undefined, err);
      }
    }, ms);
    w.timer.unref();
  }

  #settle(frame: F | null | undefined, err?: IbpError): void {
    const w = this.#waiter;
    if (!w) return;
    this.#waiter = undefined;
    if (w.timer) clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve(frame ?? null);
  }

  #onData(chunk: Buffer): void {
    if (this.#failure) return;
    const out = this.#scratch;
    let err: IbpError | undefined;
    try {
      this.#decoder.push(chunk, out);
    } catch (e) {
      err = e instanceof IbpError ? e : new IbpError('IBP_ERR_INTERNAL', String(e), { cause: e });
    }
    for (let i = 0; i < out.length; i++) {
      const f = out[i]!;
      let taken = false;
      if (this.#intercept) {
        try {
          taken = this.#intercept(f);
        } catch (e) {
          err ??= e instanceof IbpError ? e : new IbpError('IBP_ERR_INTERNAL', String(e), { cause: e });
          taken = true;
        }
      }
      if (!taken) this.#queue.push(f);
    }
    out.length = 0;
    if (err) this.#failure = err;
    const w = this.#waiter;
    if (w && this.#queue.length > 0) {
      this.#settle(this.#queue.shift()!);
    } else if (w && err) {
      this.#settle(undefined, err);
    } else if (w && w.idle && this.#decoder.partial) {
      w.idle = false; // the first bytes of a frame: from now on the read timeout applies
      this.#arm(w, w.readMs);
    }
    if (this.#queue.length > 0 || this.#failure) this.#socket.pause();
  }

  #onEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiter && this.#queue.length === 0) this.#settle(undefined, this.#failure ?? this.#closedError());
  }

  #closedError(): IbpError {
    return this.#decoder.partial
      ? new IbpError('IBP_ERR_PROTO_TRUNCATED', 'the connection closed in the middle of a frame')
      : new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', 'the connection closed');
  }
}
