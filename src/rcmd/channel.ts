/**
 * A framed, optionally MAC-signed conversation over one TCP socket, used by both the agent and the client:
 * `send(type, body)` and `await next(timeoutMs)`. Frames that arrive early are queued (the socket is paused
 * past a bound); a close or a malformed frame fails the waits that follow, after the frames already queued
 * (so an ERROR sent just before a close is still read).
 */
import type { Socket } from 'node:net';
import { IbpError } from '../core/errors.js';
import { FrameSigner, FrameVerifier } from './session-keys.js';
import { encodeHeader, FrameDecoder, frameTypeName, type FrameTypeCode, type RawFrame } from './wire.js';

/** A verified frame. */
export interface Frame {
  type: FrameTypeCode;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);
/** Past this many queued bytes the socket is paused until the consumer catches up. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

interface Waiter {
  resolve: (f: Frame) => void;
  reject: (e: IbpError) => void;
  timer: NodeJS.Timeout;
}

export class FrameChannel {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #queue: RawFrame[] = [];
  #queuedBytes = 0;
  #waiter: Waiter | undefined;
  #failure: IbpError | undefined;
  #signer: FrameSigner | undefined;
  #verifier: FrameVerifier | undefined;
  readonly #closed = new AbortController();
  readonly #peer: string;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.#peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(new IbpError('IBP_ERR_RCMD_CONNECT', `connection error: ${err.message}`, { cause: err, retryable: true })));
    socket.on('close', () => {
      this.#closed.abort();
      this.#fail(new IbpError('IBP_ERR_RCMD_CONNECT', 'the peer closed the connection', { retryable: true }));
    });
  }

  /** Aborted when the socket has closed. */
  get closedSignal(): AbortSignal {
    return this.#closed.signal;
  }

  /** The peer's address as `ip:port`. */
  get peer(): string {
    return this.#peer;
  }

  /** True once both directions are signed (after the handshake). */
  get signed(): boolean {
    return this.#signer !== undefined;
  }

  /** True when the socket is gone or a failure was seen. */
  get broken(): boolean {
    return this.#failure !== undefined || this.#socket.destroyed;
  }

  /** From now on every frame sent is signed with `sendKey` and every frame read must verify with `recvKey`. */
  startSigning(sendKey: Buffer, recvKey: Buffer): void {
    this.#signer = new FrameSigner(sendKey);
    this.#verifier = new FrameVerifier(recvKey);
  }

  /** Sends one frame; resolves once the socket has taken it (waits for 'drain' when its buffer is full). */
  async send(type: FrameTypeCode, body: Buffer = EMPTY): Promise<void> {
    if (this.#socket.destroyed || this.#failure?.code === 'IBP_ERR_RCMD_CONNECT') {
      throw this.#failure ?? new IbpError('IBP_ERR_RCMD_CONNECT', 'the connection is closed', { retryable: true });
    }
    const header = encodeHeader(type, body.length, this.#signer !== undefined);
    const s = this.#socket;
    s.cork();
    s.write(header);
    if (body.length > 0) s.write(body);
    if (this.#signer !== undefined) s.write(this.#signer.sign(header, body));
    s.uncork();
    if (s.writableNeedDrain) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => { s.off('close', onClose); resolve(); };
        const onClose = (): void => {
          s.off('drain', onDrain);
          reject(new IbpError('IBP_ERR_RCMD_CONNECT', 'the connection closed while sending', { retryable: true }));
        };
        s.once('drain', onDrain);
        s.once('close', onClose);
      });
    }
  }

  /**
   * The next frame, MAC-verified when signing is on.
   * @throws IbpError IBP_ERR_RCMD_TIMEOUT after `timeoutMs` (`what` names what was awaited),
   *   IBP_ERR_RCMD_CONNECT when the connection closed, IBP_ERR_RCMD_FRAME / _BAD_MAC for a bad frame.
   */
  next(timeoutMs: number, what: string): Promise<Frame> {
    if (this.#waiter !== undefined) return Promise.reject(new IbpError('IBP_ERR_INTERNAL', 'two concurrent reads on one ibcmd channel'));
    const raw = this.#queue.shift();
    if (raw !== undefined) {
      this.#dequeued(raw);
      try {
        return Promise.resolve(this.#open(raw));
      } catch (err) {
        return Promise.reject(err as IbpError);
      }
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new IbpError('IBP_ERR_RCMD_TIMEOUT', `no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = { resolve, reject, timer };
    });
  }

  /** Sends a last frame (if any), then ends the socket; destroys it if the peer has not closed within `lingerMs`. */
  end(last?: { type: FrameTypeCode; body: Buffer }, lingerMs = 2000): void {
    const s = this.#socket;
    if (s.destroyed) return;
    if (last !== undefined && !s.writableEnded) {
      this.send(last.type, last.body).catch(() => undefined);
    }
    if (!s.writableEnded) s.end();
    setTimeout(() => s.destroy(), lingerMs).unref();
  }

  /** Closes the socket at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #open(raw: RawFrame): Frame {
    if (this.#verifier !== undefined) this.#verifier.verify(raw.header, raw.body, raw.mac);
    else if (raw.mac !== undefined) {
      throw new IbpError('IBP_ERR_RCMD_FRAME', `a signed ${frameTypeName(raw.type)} frame before authentication`);
    }
    return { type: raw.type, body: raw.body };
  }

  #onData(chunk: Buffer): void {
    let frames: RawFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#fail(err as IbpError);
      this.#socket.pause();
      return;
    }
    for (const f of frames) {
      this.#queue.push(f);
      this.#queuedBytes += f.body.length;
    }
    if (this.#queuedBytes > MAX_QUEUED_BYTES) this.#socket.pause();
    this.#deliver();
  }

  #deliver(): void {
    const w = this.#waiter;
    if (w === undefined) return;
    const raw = this.#queue.shift();
    if (raw === undefined) {
      if (this.#failure === undefined) return;
      this.#waiter = undefined;
      clearTimeout(w.timer);
      w.reject(this.#failure);
      return;
    }
    this.#waiter = undefined;
    clearTimeout(w.timer);
    this.#dequeued(raw);
    try {
      w.resolve(this.#open(raw));
    } catch (err) {
      w.reject(err as IbpError);
    }
  }

  #dequeued(raw: RawFrame): void {
    this.#queuedBytes -= raw.body.length;
    if (this.#queuedBytes <= MAX_QUEUED_BYTES / 2 && this.#socket.isPaused() && this.#failure === undefined) this.#socket.resume();
  }

  #fail(err: IbpError): void {
    if (this.#failure === undefined) this.#failure = err;
    this.#deliver();
  }
}
