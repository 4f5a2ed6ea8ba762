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
 *
 * Security (docs/protocol.md §Security): when the handler's flags have any of sign/compress/encrypt on, each
 * accepted transaction gets a TxSecurity (keys from `handler.securityContext()`); a REQUEST or request file that
 * does not open is an ERROR before anything runs. With all flags off none of that code runs.
 */
import { randomBytes } from 'node:crypto';
import { IbpError, toIbpError } from '../core/errors.js';
import type { AdapterContext, ProtocolAdapter } from './adapter.js';
import { FrameReader, closedError } from './frame-reader.js';
import { Ib2FrameDecoder, type Ib2Frame } from './ib2-decoder.js';
import { checkOutgoingFiles, expectFrame, receiveFiles, sendFiles, unexpected, type OutgoingFile } from './ib2-files.js';
import {
  FrameType, PRE_RESPONSE_NONCE_BYTES, decodePreRequest, encodeError, encodeGoAway, encodePreResponse, encodeResponse, encodeSealedResponse,
  type Ib2PreRequest,
} from './ib2-frames.js';
import { CLOSE_LINGER_MS } from './limits.js';
import { driveTransaction, safeCheck, safeLoad } from './run-transaction.js';
import { TxSecurity, anySecurity, keyedSecurity } from './security/tx-security.js';
import { closeSoon } from './socket-io.js';
import { unlink } from 'node:fs/promises';
import type { IncomingTransaction, SecurityFlags, TransactionOutcome } from './types.js';

const EMPTY = Buffer.alloc(0);
const NO_SECURITY: SecurityFlags = { sign: false, compress: false, encrypt: false };
const NO_FILES: string[] = [];

/**
 * The common transaction (no files) runs without a promise of the adapter's own: PRE_REQUEST and REQUEST
 * are taken from the reader as they are decoded, `run` is called synchronously, and PRE_RESPONSE (when
 * pipelined) and RESPONSE leave in one write. Transactions with files go through the async path.
 */
export class Ib2ServerAdapter implements ProtocolAdapter {
  #c: AdapterContext;
  #reader: FrameReader<Ib2Frame>;
  #inTx = false;
  #goingAway = false;
  #closing = false;
  /** The response, held until run settles or the event loop turns (so a GOAWAY sent meanwhile joins it). */
  #held: Buffer | undefined;
  #heldFlush = (): void => this.#flush();
  #onIdleFrame = (err: IbpError | undefined, f: Ib2Frame | null): void => this.#idleFrame(err, f);
  #pre: Ib2PreRequest | undefined;
  /** The PRE_RESPONSE still to be written with the RESPONSE (pipelined, accepted), or undefined. */
  #accept: SecurityFlags | undefined;
  #refused = false;
  /** The handler's flags (fixed for the connection); `#secure` = any of them on. */
  #flags: SecurityFlags;
  #secure: boolean;
  /** The connection nonce PRE_RESPONSE carries when signing or encryption is on. */
  #nonce: Buffer | undefined;
  /** Transactions begun on this connection (PRE_REQUESTs read): the next one's number. */
  #seq = 0;
  /** The current transaction's protection (when #secure) and its PRE_REQUEST payload (what REQUEST binds). */
  #sec: TxSecurity | undefined;
  #prePayload: Buffer | undefined;
  #onRequestFrame = (err: IbpError | undefined, f: Ib2Frame | null): void => this.#requestFrame(err, f);
  #onTxDone = (): void => this.#txDone();

  constructor(c: AdapterContext) {
    this.#c = c;
    this.#reader = new FrameReader(c.socket, new Ib2FrameDecoder(c.limits));
    this.#flags = c.handler.securityFlags ?? NO_SECURITY;
    this.#secure = anySecurity(this.#flags);
    if (keyedSecurity(this.#flags)) this.#nonce = randomBytes(PRE_RESPONSE_NONCE_BYTES);
    if (c.goingAway) this.goAway();
    this.#idle();
  }

  get inFlight(): boolean {
    return this.#inTx || this.#reader.pending;
  }

  goAway(): void {
    if (this.#goingAway || this.#closing) return;
    this.#goingAway = true;
    const s = this.#c.socket;
    this.#flushAccept();
    if (this.#held) this.#held = Buffer.concat([this.#held, encodeGoAway()]);
    else if (s.writable) s.write(encodeGoAway());
    this.#reader.rearmIdle(this.#c.goAwayGraceMs);
  }

  /** Between transactions: serves what is already decoded, then waits for the next PRE_REQUEST. */
  #idle(): void {
    const { limits } = this.#c;
    for (;;) {
      if (this.#closing) return;
      const f = this.#reader.take();
      if (f === undefined) {
        this.#reader.wait({ idleMs: this.#goingAway ? this.#c.goAwayGraceMs : limits.idleTimeoutMs, readMs: limits.readTimeoutMs }, this.#onIdleFrame);
        return;
      }
      if (!this.#begin(f)) return;
    }
  }

  #idleFrame(err: IbpError | undefined, f: Ib2Frame | null): void {
    if (err) {
      this.#onError(err);
      return;
    }
    if (f === null) {
      if (this.#goingAway) {
        this.#close(undefined);
        return;
      }
      this.#c.log.debug?.({ protocol: 'IB2', remote: this.#remote() }, 'idle connection: sending GOAWAY');
      this.goAway();
      this.#idle();
      return;
    }
    if (this.#begin(f)) this.#idle();
  }

  /** Starts a transaction at its PRE_REQUEST; true when it is over already (the caller reads on). */
  #begin(f: Ib2Frame): boolean {
    try {
      if (f.type !== FrameType.PRE_REQUEST) throw unexpected(f, 'PRE_REQUEST');
      this.#inTx = true;
      const { handler, log } = this.#c;
      const pre = decodePreRequest(f.payload);
      const seq = this.#seq++;
      let refusal = safeCheck(handler, pre, 'IB2', log);
      const flags = this.#flags;
      const nonce = this.#nonce;
      this.#sec = undefined;
      if (this.#secure && !refusal) {
        try {
          this.#sec = this.#txSecurity(seq);
        } catch (err) {
          refusal = toIbpError(err);
        }
      }
      this.#prePayload = this.#secure ? f.payload : undefined;
      if (refusal) log.debug?.({ protocol: 'IB2', app: pre.app, code: refusal.code }, 'pre-request refused');
      if (pre.fileCount > 0) {
        this.#c.socket.write(encodePreResponse({ securityFlags: flags, nonce, refusal: refusal?.toJSON() }));
        if (!refusal || pre.pipelined) void this.#withFiles(pre, refusal !== undefined, this.#sec, this.#prePayload);
        else this.#inTx = false;
        return !this.#inTx;
      }
      if (refusal) {
        this.#c.socket.write(encodePreResponse({ securityFlags: flags, nonce, refusal: refusal.toJSON() }));
        if (!pre.pipelined) {
          this.#inTx = false;
          return true;
        }
      }
      this.#pre = pre;
      this.#refused = refusal !== undefined;
      if (!refusal) {
        if (pre.pipelined) this.#accept = flags;
        else this.#c.socket.write(encodePreResponse({ securityFlags: flags, nonce }));
      }
      const req = this.#reader.take();
      if (req !== undefined) return this.#request(req);
      this.#flushAccept();
      this.#reader.wait({ readMs: this.#c.limits.readTimeoutMs }, this.#onRequestFrame);
      return false;
    } catch (err) {
      this.#onError(toIbpError(err));
      return false;
    }
  }

  #requestFrame(err: IbpError | undefined, f: Ib2Frame | null): void {
    if (err) {
      this.#onError(err);
      return;
    }
    if (this.#request(f!)) this.#idle();
  }

  /** The REQUEST of a transaction without files; true when it is over already. */
  #request(f: Ib2Frame): boolean {
    const pre = this.#pre!;
    this.#pre = undefined;
    try {
      if (f.type !== FrameType.REQUEST) throw unexpected(f, 'REQUEST');
    } catch (err) {
      this.#onError(toIbpError(err));
      return false;
    }
    if (this.#refused) {
      // A refused pipelined request: read and dropped.
      this.#inTx = false;
      return true;
    }
    let body = f.payload;
    if (this.#sec) {
      try {
        body = this.#sec.openRequest(body, this.#prePayload!);
      } catch (err) {
        this.#onError(toIbpError(err));
        return false;
      }
    }
    this.#run(pre, body, NO_FILES);
    return false;
  }

  /** The protection of transaction `seq`. @throws IbpError IBP_ERR_SEC_NO_KEY when signing or encryption needs a key this node lacks. */
  #txSecurity(seq: number): TxSecurity {
    const { handler, limits } = this.#c;
    const ctx = handler.securityContext?.();
    return new TxSecurity({
      role: 'server', flags: this.#flags, nonce: this.#nonce, seq, keys: ctx?.keys, node: ctx?.node ?? '', refreshKeys: ctx?.refreshKeys,
      minCompressSize: ctx?.minCompressSize ?? 0, maxBodyBytes: limits.maxBodyBytes,
    });
  }

  #run(pre: Ib2PreRequest, body: Buffer, files: string[]): void {
    const tx: IncomingTransaction = {
      protocol: 'IB2',
      clientNode: pre.clientNode,
      clientIp: this.#c.remoteIp,
      clientPort: this.#c.remotePort,
      app: pre.app,
      jnlsno: pre.jnlsno,
      trace: pre.trace,
      body,
      requestFiles: files,
    };
    driveTransaction(this.#c.handler, tx, (o) => this.#sendResponse(o), this.#c.log, this.#onTxDone);
  }

  #txDone(): void {
    this.#flush();
    this.#inTx = false;
    this.#idle();
  }

  /** A transaction with files (or a refused pipelined one whose files are read and dropped). */
  async #withFiles(pre: Ib2PreRequest, refused: boolean, sec: TxSecurity | undefined, prePayload: Buffer | undefined): Promise<void> {
    const { limits, fileDir } = this.#c;
    const readMs = limits.readTimeoutMs;
    const fileSec = sec?.protectsFiles ? sec : undefined;
    try {
      if (refused) {
        await receiveFiles(this.#reader, pre.fileCount, { fileDir, maxFileBytes: limits.maxFileBytes, readMs, discard: true, sec: fileSec });
        await expectFrame(this.#reader, FrameType.REQUEST, { readMs });
        this.#inTx = false;
        this.#idle();
        return;
      }
      const files = await receiveFiles(this.#reader, pre.fileCount, { fileDir, maxFileBytes: limits.maxFileBytes, readMs, sec: fileSec });
      let body: Buffer;
      try {
        body = (await expectFrame(this.#reader, FrameType.REQUEST, { readMs })).payload;
        if (sec) body = sec.openRequest(body, prePayload!);
      } catch (err) {
        await Promise.all(files.map((p) => unlink(p).catch(() => {})));
        throw err;
      }
      this.#run(pre, body, files);
    } catch (err) {
      this.#onError(toIbpError(err));
    }
  }

  #sendResponse(o: TransactionOutcome): Promise<void> | undefined {
    const { limits, log } = this.#c;
    if (o.error || o.responseFiles.length === 0) {
      this.#answer(o.error, o.body, undefined);
      return undefined;
    }
    return checkOutgoingFiles(o.responseFiles, limits.maxFileBytes).then(
      (files) => this.#answer(undefined, o.body, files),
      (err: unknown) => {
        const error = toIbpError(err);
        log.warn({ err: error, protocol: 'IB2' }, 'response files cannot be sent; answering with the error');
        return this.#answer(error, o.body, undefined);
      },
    );
  }

  #answer(error: IbpError | undefined, body: Buffer, files: OutgoingFile[] | undefined): Promise<void> | undefined {
    const { socket, limits, handler, log } = this.#c;
    if (body.length > limits.maxBodyBytes) {
      error = new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `response body is ${body.length} bytes, at most ${limits.maxBodyBytes} allowed`);
      log.warn({ err: error, protocol: 'IB2' }, 'response body too large; answering with the error');
      body = EMPTY;
    }
    if (error) files = undefined;
    const accept = this.#accept;
    this.#accept = undefined;
    const sec = this.#sec;
    this.#sec = undefined;
    let frame: Buffer | undefined;
    try {
      if (sec) {
        frame = this.#sealedResponse(sec, error, body, files, accept);
        if (frame === undefined) {
          // The limit applies to what travels: a sealed body past maxBodyBytes becomes the error.
          error = new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `sealed response body is more than ${limits.maxBodyBytes} bytes`);
          log.warn({ err: error, protocol: 'IB2' }, 'sealed response body too large; answering with the error');
          files = undefined;
          frame = this.#sealedResponse(sec, error, EMPTY, undefined, accept)!;
        }
      } else {
        frame = encodeResponse({
          error: error?.toJSON(),
          load: safeLoad(handler),
          fileNames: files ? files.map((f) => f.name) : NO_FILES,
          body,
        }, accept);
      }
    } catch (err) {
      const e = toIbpError(err);
      log.warn({ err: e, protocol: 'IB2' }, 'the response cannot be sealed; closing the connection');
      this.#close(encodeError(e.toJSON()));
      return undefined;
    }
    if (socket.destroyed || this.#closing) return undefined;
    if (!files) {
      // Flushed when run settles (a GOAWAY the platform sends on its way out then leaves in the same
      // write), or on the next turn of the event loop when run goes on (response ahead).
      this.#held = frame;
      setImmediate(this.#heldFlush);
      return undefined;
    }
    socket.write(frame);
    return sendFiles(socket, files, sec?.protectsFiles ? sec : undefined).catch((err: unknown) => {
      const e = toIbpError(err);
      if (e.code !== 'IBP_ERR_PROTO_CONNECTION_CLOSED') log.warn({ err: e, protocol: 'IB2' }, 'sending response files failed');
      this.#close(encodeError(e.toJSON()));
    });
  }

  /** The RESPONSE with its body sealed, or undefined when the sealed body is past maxBodyBytes. */
  #sealedResponse(sec: TxSecurity, error: IbpError | undefined, body: Buffer, files: OutgoingFile[] | undefined, accept: SecurityFlags | undefined): Buffer | undefined {
    const { limits, handler } = this.#c;
    let size = 0;
    const frame = encodeSealedResponse(
      { error: error?.toJSON(), load: safeLoad(handler), fileNames: files ? files.map((f) => f.name) : NO_FILES },
      (head) => {
        const sealed = sec.sealResponse(body, head);
        size = sealed.length;
        return sealed;
      },
      accept, this.#nonce,
    );
    return size <= limits.maxBodyBytes ? frame : undefined;
  }

  #flushAccept(): void {
    const flags = this.#accept;
    if (!flags) return;
    this.#accept = undefined;
    this.#c.socket.write(encodePreResponse({ securityFlags: flags, nonce: this.#nonce }));
  }

  #flush(): void {
    const b = this.#held;
    if (!b) return;
    this.#held = undefined;
    const s = this.#c.socket;
    if (!s.destroyed && s.writable) s.write(b);
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
    this.#flushAccept();
    this.#flush();
    this.#closing = true;
    this.#reader.abort(closedError('the connection is closing'));
    closeSoon(this.#c.socket, last, Math.min(CLOSE_LINGER_MS, this.#c.limits.readTimeoutMs));
  }

  #remote(): string {
    return `${this.#c.remoteIp}:${this.#c.remotePort}`;
  }
}
