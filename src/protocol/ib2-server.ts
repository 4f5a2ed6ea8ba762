/**
 * The server side of IB2 on one connection: the four-packet exchange, transaction after transaction.
 *
 *   idle ──PRE_REQUEST──▶ checked ──refused──▶ (pipelined: read and drop files + REQUEST) ──▶ idle
 *                            │accepted
 *                            ▼
 *                     receive files ──REQUEST──▶ run ──reply──▶ RESPONSE + response files ──▶ idle
 *
 * GOAWAY (goAway() or the idle timeout) is written between frames; requests that were already on the wire
 * are still served until the client closes or a grace period passes with nothing in flight.
 */
import { IbpError, toIbpError } from '../core/errors.js';
import type { AdapterContext, ProtocolAdapter } from './adapter.js';
import { FrameReader } from './frame-reader.js';
import { Ib2FrameDecoder, type Ib2Frame } from './ib2-decoder.js';
import { checkOutgoingFiles, expectFrame, receiveFiles, sendFiles, unexpected, type OutgoingFile } from './ib2-files.js';
import { FrameType, decodePreRequest, encodeError, encodeGoAway, encodePreResponse, encodeResponse } from './ib2-frames.js';
import { CLOSE_LINGER_MS } from './limits.js';
import { runTransaction, safeCheck, safeLoad } from './run-transaction.js';
import { closeSoon } from './socket-io.js';
import { unlink } from 'node:fs/promises';
import type { IncomingTransaction, SecurityFlags, TransactionOutcome } from './types.js';

const EMPTY = Buffer.alloc(0);
const NO_SECURITY: SecurityFlags = { sign: false, compress: false, encrypt: false };

export class Ib2ServerAdapter implements ProtocolAdapter {
  #c: AdapterContext;
  #reader: FrameReader<Ib2Frame>;
  #inTx = false;
  #goingAway = false;
  #closing = false;
  #corked = false;

  constructor(c: AdapterContext) {
    this.#c = c;
    this.#reader = new FrameReader(c.socket, new Ib2FrameDecoder(c.limits));
    if (c.goingAway) this.goAway();
    void this.#loop();
  }

  get inFlight(): boolean {
    return this.#inTx || this.#reader.pending;
  }

  goAway(): void {
    if (this.#goingAway || this.#closing) return;
    this.#goingAway = true;
    const s = this.#c.socket;
    if (s.writable) s.write(encodeGoAway());
    this.#reader.rearmIdle(this.#c.goAwayGraceMs);
  }

  async #loop(): Promise<void> {
    const { limits, log } = this.#c;
    try {
      for (;;) {
        const idleMs = this.#goingAway ? this.#c.goAwayGraceMs : limits.idleTimeoutMs;
        const f = await this.#reader.next({ idleMs, readMs: limits.readTimeoutMs });
        if (f === null) {
          if (this.#goingAway) {
            this.#close(undefined);
            return;
          }
          log.debug?.({ protocol: 'IB2', remote: this.#remote() }, 'idle connection: sending GOAWAY');
          this.goAway();
          continue;
        }
        if (f.type !== FrameType.PRE_REQUEST) throw unexpected(f, 'PRE_REQUEST');
        this.#inTx = true;
        await this.#transaction(f.payload);
        this.#inTx = false;
      }
    } catch (err) {
      this.#onError(toIbpError(err));
    }
  }

  async #transaction(payload: Buffer): Promise<void> {
    const { handler, socket, limits, log, fileDir } = this.#c;
    const pre = decodePreRequest(payload);
    const refusal = safeCheck(handler, pre, 'IB2', log);
    const preResponse = encodePreResponse({
      securityFlags: handler.securityFlags ?? NO_SECURITY,
      refusal: refusal?.toJSON(),
    });
    if (pre.pipelined && !refusal && pre.fileCount === 0 && !this.#corked) {
      // PRE_RESPONSE and RESPONSE leave in one write, as the client sent PRE_REQUEST and REQUEST.
      socket.cork();
      this.#corked = true;
    }
    socket.write(preResponse);
    const readMs = limits.readTimeoutMs;
    if (refusal) {
      log.debug?.({ protocol: 'IB2', app: pre.app, code: refusal.code }, 'pre-request refused');
      if (pre.pipelined) {
        await receiveFiles(this.#reader, pre.fileCount, { fileDir, maxFileBytes: limits.maxFileBytes, readMs, discard: true });
        await expectFrame(this.#reader, FrameType.REQUEST, { readMs });
      }
      return;
    }
    const files = await receiveFiles(this.#reader, pre.fileCount, { fileDir, maxFileBytes: limits.maxFileBytes, readMs });
    let request: Ib2Frame;
    try {
      request = await expectFrame(this.#reader, FrameType.REQUEST, { readMs });
    } catch (err) {
      await Promise.all(files.map((p) => unlink(p).catch(() => {})));
      throw err;
    }
    const tx: IncomingTransaction = {
      protocol: 'IB2',
      clientNode: pre.clientNode,
      clientIp: this.#c.remoteIp,
      clientPort: this.#c.remotePort,
      app: pre.app,
      jnlsno: pre.jnlsno,
      trace: pre.trace,
      body: request.payload,
      requestFiles: files,
    };
    await runTransaction(handler, tx, (o) => this.#sendResponse(o), log);
    this.#uncork();
  }

  async #sendResponse(o: TransactionOutcome): Promise<void> {
    const { socket, limits, handler, log } = this.#c;
    let error = o.error;
    let body = o.body;
    let files: OutgoingFile[] = [];
    if (!error && o.responseFiles.length > 0) {
      try {
        files = await checkOutgoingFiles(o.responseFiles, limits.maxFileBytes);
      } catch (err) {
        error = toIbpError(err);
        log.warn({ err: error, protocol: 'IB2' }, 'response files cannot be sent; answering with the error');
      }
    }
    if (body.length > limits.maxBodyBytes) {
      error = new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `response body is ${body.length} bytes, at most ${limits.maxBodyBytes} allowed`);
      log.warn({ err: error, protocol: 'IB2' }, 'response body too large; answering with the error');
      body = EMPTY;
    }
    if (error) files = [];
    const frame = encodeResponse({
      error: error?.toJSON(),
      load: safeLoad(handler),
      fileNames: files.map((f) => f.name),
      body,
    });
    if (socket.destroyed || this.#closing) return;
    if (!this.#corked) {
      socket.cork();
      this.#corked = true;
    }
    socket.write(frame);
    if (files.length === 0) {
      // Flushed when run settles (a GOAWAY the platform sends on its way out then leaves in the same
      // write), or on the next turn of the event loop when run goes on (response ahead).
      setImmediate(() => this.#uncork());
      return;
    }
    this.#uncork();
    try {
      await sendFiles(socket, files);
    } catch (err) {
      const e = toIbpError(err);
      if (e.code !== 'IBP_ERR_PROTO_CONNECTION_CLOSED') log.warn({ err: e, protocol: 'IB2' }, 'sending response files failed');
      this.#close(encodeError(e.toJSON()));
    }
  }

  #onError(err: IbpError): void {
    if (this.#closing) return;
    const { log } = this.#c;
    if (err.code === 'IBP_ERR_PROTO_CONNECTION_CLOSED' && !this.#inTx) {
      log.debug?.({ protocol: 'IB2', remote: this.#remote() }, 'connection closed by the peer');
      this.#close(undefined);
      return;
    }
    log.warn({ err, protocol: 'IB2', remote: this.#remote() }, 'IB2 protocol error; closing the connection');
    this.#close(encodeError(err.toJSON()));
  }

  #close(last: Buffer | undefined): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#reader.abort(new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', 'the connection is closing'));
    this.#uncork();
    closeSoon(this.#c.socket, last, Math.min(CLOSE_LINGER_MS, this.#c.limits.readTimeoutMs));
  }

  #uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#c.socket.uncork();
  }

  #remote(): string {
    return `${this.#c.remoteIp}:${this.#c.remotePort}`;
  }
}
