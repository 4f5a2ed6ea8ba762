/**
 * An in-memory stand-in for a connected `net.Socket`, for driving the protocol layer (serveConnection,
 * FrameReader) without the kernel: the test pushes the peer's bytes in with `feed()` and `finish()` (EOF),
 * and everything the code under test writes is collected in `written`. It behaves like a server-side socket
 * of `net.Server`: not half-open (EOF from the peer ends our side too), `setTimeout` emits 'timeout' after
 * that long without traffic, and `bytesRead` counts the bytes fed.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export class MemorySocket extends Duplex {
  /** Every chunk written by the code under test, in order. */
  readonly written: Buffer[] = [];
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  #bytesRead = 0;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor() {
    super({ allowHalfOpen: false });
    this.once('close', () => this.#clearTimer());
  }

  /** This object, typed as the socket the protocol layer expects. */
  get socket(): Socket {
    return this as unknown as Socket;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** The bytes written so far, joined. */
  output(): Buffer {
    return Buffer.concat(this.written);
  }

  /** Delivers bytes from the peer. */
  feed(chunk: Buffer): void {
    if (this.destroyed || this.readableEnded) return;
    this.#bytesRead += chunk.length;
    this.#touch();
    this.push(chunk);
  }

  /** The peer's EOF. */
  finish(): void {
    if (!this.destroyed) this.push(null);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written.push(Buffer.from(chunk));
    this.#touch();
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#clearTimer();
    cb(err);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.#timeoutMs = ms;
    if (cb) this.once('timeout', cb);
    this.#touch();
    return this;
  }

  resetAndDestroy(): this {
    return this.destroy();
  }

  #touch(): void {
    this.#clearTimer();
    if (this.#timeoutMs > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), this.#timeoutMs);
      this.#timer.unref();
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
