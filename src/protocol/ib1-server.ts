/**
 * The server side of IB1 on one connection: request after request, each answered in order. IB1 has no
 * pre-request on the wire (the adapter still asks `handler.check`, with client node '' and no files), no
 * files, no security and no GOAWAY: going away closes the connection once the current response is out.
 * A protocol error is answered with an error response (status 1, the error's JSON) before closing.
 */
import { IbpError, toIbpError } from '../core/errors.js';
import type { AdapterContext, ProtocolAdapter } from './adapter.js';
import { FrameReader } from './frame-reader.js';
import { Ib1Decoder, encodeIb1Response, type Ib1Request } from './ib1-codec.js';
import { CLOSE_LINGER_MS } from './limits.js';
import { runTransaction, safeCheck } from './run-transaction.js';
import { closeSoon } from './socket-io.js';
import type { PreRequest, TransactionOutcome } from './types.js';

export class Ib1ServerAdapter implements ProtocolAdapter {
  #c: AdapterContext;
  #reader: FrameReader<Ib1Request>;
  #inTx = false;
  #goingAway: boolean;
  #closing = false;

  constructor(c: AdapterContext) {
    this.#c = c;
    this.#goingAway = c.goingAway;
    this.#reader = new FrameReader(c.socket, new Ib1Decoder('request', c.limits.maxBodyBytes));
    void this.#loop();
  }

  get inFlight(): boolean {
    return this.#inTx || this.#reader.pending;
  }

  goAway(): void {
    if (this.#goingAway) return;
    this.#goingAway = true;
    if (!this.inFlight) this.#close(undefined);
  }

  async #loop(): Promise<void> {
    const { limits, handler, log } = this.#c;
    try {
      for (;;) {
        if (this.#goingAway && !this.#reader.pending) {
          this.#close(undefined);
          return;
        }
        const req = await this.#reader.next({ idleMs: limits.idleTimeoutMs, readMs: limits.readTimeoutMs });
        if (req === null) {
          log.debug?.({ protocol: 'IB1', remote: this.#remote() }, 'idle connection closed');
          this.#close(undefined);
          return;
        }
        this.#inTx = true;
        const pre: PreRequest = { clientNode: '', app: req.app, jnlsno: '', trace: false, fileCount: 0 };
        const refusal = safeCheck(handler, pre, 'IB1', log);
        if (refusal) {
          this.#write(encodeIb1Response({ error: refusal.toJSON(), body: Buffer.alloc(0) }));
        } else {
          await runTransaction(handler, {
            protocol: 'IB1',
            clientNode: '',
            clientIp: this.#c.remoteIp,
            clientPort: this.#c.remotePort,
            app: req.app,
            jnlsno: '',
            trace: false,
            body: req.body,
            requestFiles: [],
          }, async (o) => this.#sendResponse(o), log);
        }
        this.#inTx = false;
      }
    } catch (err) {
      this.#onError(toIbpError(err));
    }
  }

  #sendResponse(o: TransactionOutcome): void {
    if (o.responseFiles.length > 0) {
      this.#c.log.debug?.({ protocol: 'IB1', files: o.responseFiles.length }, 'IB1 carries no files; response files dropped');
    }
    let error = o.error;
    if (!error && o.body.length > this.#c.limits.maxBodyBytes) {
      error = new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `response body is ${o.body.length} bytes, at most ${this.#c.limits.maxBodyBytes} allowed`);
    }
    this.#write(encodeIb1Response({ error: error?.toJSON(), body: o.body }));
  }

  #write(buf: Buffer): void {
    const s = this.#c.socket;
    if (!s.destroyed && !this.#closing) s.write(buf);
  }

  #onError(err: IbpError): void {
    if (this.#closing) return;
    if (err.code === 'IBP_ERR_PROTO_CONNECTION_CLOSED' && !this.#inTx) {
      this.#c.log.debug?.({ protocol: 'IB1', remote: this.#remote() }, 'connection closed by the peer');
      this.#close(undefined);
      return;
    }
    this.#c.log.warn({ err, protocol: 'IB1', remote: this.#remote() }, 'IB1 protocol error; closing the connection');
    this.#close(encodeIb1Response({ error: err.toJSON(), body: Buffer.alloc(0) }));
  }

  #close(last: Buffer | undefined): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#reader.abort(new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', 'the connection is closing'));
    closeSoon(this.#c.socket, last, Math.min(CLOSE_LINGER_MS, this.#c.limits.readTimeoutMs));
  }

  #remote(): string {
    return `${this.#c.remoteIp}:${this.#c.remotePort}`;
  }
}
