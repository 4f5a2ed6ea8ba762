/**
 * Pull-style reading of frames from a socket: `await reader.next(...)` returns the next whole frame;
 * `take()` and `wait(opts, cb)` do the same without a promise (the hot paths of the IB2 server and client).
 * Backpressure: while decoded frames wait for a consumer the socket is paused, so at most one socket chunk
 * plus the stream's high-water mark is held beyond the frame being assembled. Timeouts: an idle wait
 * (between transactions) turns into a read wait the moment the first byte of a frame arrives. One timer per
 * reader serves every wait: it is re-created only when a wait ends earlier than the timer is set for.
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

/** Called once with the next frame (`null`: an idle wait expired) or a coded IbpError. */
export type FrameCallback<F> = (err: IbpError | undefined, frame: F | null) => void;

interface Waiter<F> {
  cb: FrameCallback<F>;
  idle: boolean;
  readMs: number;
}

const now = (): number => performance.now();

/**
 * An IbpError without a stack trace, for the routine end of a connection (a peer closing between
 * transactions): capturing a stack there costs more than the rest of the close, and says nothing.
 */
export function closedError(message: string): IbpError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', message);
  } finally {
    Error.stackTraceLimit = limit;
  }
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
  /** One timer per reader, re-created only when a wait needs an earlier deadline than it is set for. */
  #timer: NodeJS.Timeout | undefined;
  #timerDue = 0;
  #deadline = 0;
  #onTimer = (): void => this.#timerFired();

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
    socket.on('close', () => {
      this.#onEnd();
      this.#clearTimer();
    });
  }

  /** True while bytes of an incomplete frame are held or whole frames wait to be read. */
  get pending(): boolean {
    return this.#decoder.partial || this.#queue.length > 0;
  }

  /** The next frame; `null` when an idle wait expired with no byte received. Rejects with a coded IbpError. */
  next(opts: NextOptions): Promise<F | null> {
    if (this.#waiter) return Promise.reject(new IbpError('IBP_ERR_INTERNAL', 'FrameReader.next called twice'));
    const f = this.take();
    if (f !== undefined) return Promise.resolve(f);
    return new Promise<F | null>((resolve, reject) => {
      this.wait(opts, (err, frame) => (err ? reject(err) : resolve(frame)));
    });
  }

  /** A frame already decoded, without waiting (undefined when none is queued). */
  take(): F | undefined {
    if (this.#queue.length === 0) return undefined;
    const f = this.#queue.shift()!;
    if (this.#queue.length === 0 && !this.#failure && !this.#ended) this.#socket.resume();
    return f;
  }

  /**
   * Like {@link next} with a callback: `cb` runs once, synchronously when a frame is queued or the reader
   * has failed, else from the socket's data event (or the timer). At most one wait at a time.
   */
  wait(opts: NextOptions, cb: FrameCallback<F>): void {
    if (this.#waiter) {
      cb(new IbpError('IBP_ERR_INTERNAL', 'FrameReader.wait called twice'), null);
      return;
    }
    const f = this.take();
    if (f !== undefined) {
      cb(undefined, f);
      return;
    }
    if (this.#failure) {
      cb(this.#failure, null);
      return;
    }
    if (this.#ended) {
      cb(this.#closedError(), null);
      return;
    }
    const idle = opts.idleMs !== undefined && !this.#decoder.partial;
    this.#waiter = { cb, idle, readMs: opts.readMs };
    this.#arm(idle ? opts.idleMs! : opts.readMs);
    this.#socket.resume();
  }

  /** Restarts an idle wait in progress with a new bound (used when GOAWAY shortens it to the grace period). */
  rearmIdle(idleMs: number): void {
    const w = this.#waiter;
    if (w && w.idle) this.#arm(idleMs);
  }

  /** Fails the current and every later read with `err` (the caller then closes the socket). */
  abort(err: IbpError): void {
    if (!this.#failure) this.#failure = err;
    this.#settle(undefined, err);
  }

  #arm(ms: number): void {
    const t = now();
    this.#deadline = t + ms;
    if (this.#timer !== undefined && this.#timerDue <= this.#deadline) return;
    this.#schedule(ms, t);
  }

  #schedule(ms: number, t: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDue = t + ms;
    this.#timer = setTimeout(this.#onTimer, ms);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #timerFired(): void {
    this.#timer = undefined;
    const w = this.#waiter;
    if (!w) return;
    const t = now();
    const left = this.#deadline - t;
    if (left >= 1) {
      this.#schedule(Math.ceil(left), t);
      return;
    }
    if (w.idle) {
      this.#settle(null);
    } else {
      const err = new IbpError('IBP_ERR_PROTO_READ_TIMEOUT', `no complete frame within ${w.readMs} ms`, {
        details: { timeoutMs: w.readMs, midFrame: this.#decoder.partial },
      });
      this.#failure = err;
      this.#settle(undefined, err);
    }
  }

  #settle(frame: F | null | undefined, err?: IbpError): void {
    const w = this.#waiter;
    if (!w) return;
    this.#waiter = undefined;
    if (err) w.cb(err, null);
    else w.cb(undefined, frame ?? null);
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
    const n = out.length;
    if (n === 1 && !this.#intercept && this.#queue.length === 0 && !err && this.#waiter) {
      // The common case: one frame for the waiting reader.
      const f = out[0]!;
      out.length = 0;
      this.#settle(f);
      return;
    }
    for (let i = 0; i < n; i++) {
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
      this.#arm(w.readMs);
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
      : closedError('the connection closed');
  }
}
