/**
 * The client side of IB2: one connection, one call at a time, and an exact comm status on every failure.
 *
 *   NOT_SENT ──REQUEST frame starts to be written──▶ ON_SENDING ──RESPONSE complete──▶ COMPLETED
 *
 * - NOT_SENT: connect, pre-request, a refusal, pushing files, a missing request file (checked before
 *   anything is written). Safe to retry.
 * - ON_SENDING: the request may have run; the connection is destroyed on any failure here. A REQUEST whose
 *   write failed (the socket was gone, or the kernel refused the bytes) never left whole: NOT_SENT.
 * - COMPLETED: the server answered; a server error outcome is thrown as the server's IbpError, and a
 *   failure while pulling response files keeps this status.
 *
 * Pipelining: once a PRE_RESPONSE on this connection has given the security flags, a call without files
 * writes PRE_REQUEST and REQUEST in one corked write and then reads PRE_RESPONSE and RESPONSE.
 *
 * Security: when the server proposes sign/compress/encrypt, the call seals REQUEST and its files and opens the
 * RESPONSE and its files with the server node's key (`keys`; docs/protocol.md §Security). A response that does
 * not open is in doubt (ON_SENDING); a missing key is NOT_SENT (IBP_ERR_SEC_NO_KEY).
 */
import net, { type Socket } from 'node:net';
import { IbpError, type CommStatus } from '../core/errors.js';
import { FrameReader, closedError, type FrameCallback } from './frame-reader.js';
import { Ib2FrameDecoder, type Ib2Frame } from './ib2-decoder.js';
import { PeerError, checkOutgoingFiles, expectFrame, receiveFiles, sendFiles, unexpected } from './ib2-files.js';
import {
  FIELD_MAX_BYTES, FrameType, IB2_HEADER_BYTES, decodePreResponse, decodeResponse, encodePipelinedRequest, encodePreRequest, encodeRequest,
  type Ib2PreRequest, type Ib2Response,
} from './ib2-frames.js';
import { resolveLimits } from './limits.js';
import type { NodeKeys } from './security/keys.js';
import { TxSecurity, anySecurity } from './security/tx-security.js';
import { MAX_FILES, type CallResult, type ProtocolLimits, type SecurityFlags } from './types.js';

export interface Ib2ConnectOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** The client's `file/` dir, where response files are stored. */
  fileDir: string;
  limits?: Partial<ProtocolLimits>;
}

export interface Ib2CallRequest {
  clientNode: string;
  app: string;
  jnlsno: string;
  trace?: boolean;
  body: Buffer;
  /** Paths of up to 4 request files. */
  files?: string[];
  /** Bound on the whole call, ms. */
  timeoutMs: number;
  /** The server node's keys (the replica's node record): needed when the server signs or encrypts. */
  keys?: NodeKeys;
  /** The server node's name (for messages). */
  node?: string;
  /** Bodies of at least this many bytes are compressed when the server proposes compression (default 0). */
  minCompressSize?: number;
}

const MAX_TIMER_MS = 0x7fff_ffff;

/** Where a call stands; `clean` = the connection is still in step with the server after a failure. */
interface CallState {
  phase: CommStatus;
  clean: boolean;
  /** The write of the REQUEST frame failed: the whole frame never left, so the server cannot run it. */
  unsent?: boolean;
}

/** The comm status a failure now gets (ON_SENDING only if the REQUEST frame may have left whole). */
function phaseOf(st: CallState): CommStatus {
  return st.phase === 'ON_SENDING' && st.unsent === true ? 'NOT_SENT' : st.phase;
}

/** A write callback that marks the call's REQUEST as never sent when its write fails. */
function markUnsent(st: CallState): (err?: Error | null) => void {
  return (err) => {
    if (err) st.unsent = true;
  };
}

/** A pipelined call without request files, driven by frame callbacks (no promise per frame). */
interface FastCall extends CallState {
  req: Ib2CallRequest;
  readMs: number;
  /** The frame awaited next. */
  want: typeof FrameType.PRE_RESPONSE | typeof FrameType.RESPONSE;
  flags: SecurityFlags | undefined;
  /** The call's protection (the connection's flags had one on). */
  sec: TxSecurity | undefined;
  /** Unix ms after which the call times out. */
  deadline: number;
  resolve(r: CallResult): void;
  reject(e: IbpError): void;
}

export class Ib2Connection {
  #socket: Socket;
  #reader: FrameReader<Ib2Frame>;
  #limits: ProtocolLimits;
  #fileDir: string;
  #remote: { host: string; port: number };
  #flags: SecurityFlags | undefined;
  /** The connection nonce of the last PRE_RESPONSE (signing or encryption). */
  #nonce: Buffer | undefined;
  /** PRE_REQUESTs written on this connection: the next transaction's number. */
  #seq = 0;
  #busy = false;
  #current: Promise<unknown> | undefined;
  #goingAway = false;
  #closed = false;
  #closedPromise: Promise<void>;
  #fast: FastCall | undefined;
  #onFastFrame: FrameCallback<Ib2Frame> = (err, f) => this.#fastFrame(err, f);
  /** The pipelined write failed: its REQUEST never left whole (called before the reader sees the close). */
  #onFastWritten = (err?: Error | null): void => {
    if (err && this.#fast) this.#fast.unsent = true;
  };
  /** One timer per connection for the fast path's call timeouts, re-created only for an earlier deadline. */
  #timer: NodeJS.Timeout | undefined;
  #timerDue = 0;
  #onTimer = (): void => this.#timerFired();

  private constructor(socket: Socket, o: Ib2ConnectOptions, limits: ProtocolLimits) {
    this.#socket = socket;
    this.#limits = limits;
    this.#fileDir = o.fileDir;
    this.#remote = { host: o.host, port: o.port };
    this.#reader = new FrameReader(socket, new Ib2FrameDecoder(limits), (f) => this.#intercept(f));
    socket.on('error', () => {}); // the reader sees the close that follows
    socket.once('end', () => { this.#closed = true; });
    this.#closedPromise = new Promise((resolve) => socket.once('close', () => {
      this.#closed = true;
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      resolve();
    }));
  }

  /**
   * Opens a connection.
   * @throws IbpError IBP_ERR_CLIENT_CONNECT_FAILED or IBP_ERR_CLIENT_CONNECT_TIMEOUT, commStatus NOT_SENT.
   */
  static connect(opts: Ib2ConnectOptions): Promise<Ib2Connection> {
    let limits: ProtocolLimits;
    try {
      limits = resolveLimits(opts.limits);
    } catch (err) {
      return Promise.reject(new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', (err as Error).message, { commStatus: 'NOT_SENT', cause: err }));
    }
    const where = `${opts.host}:${opts.port}`;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: opts.host, port: opts.port });
      const fail = (err: IbpError): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(new IbpError('IBP_ERR_CLIENT_CONNECT_TIMEOUT', `connecting to ${where} took more than ${opts.connectTimeoutMs} ms`, {
          commStatus: 'NOT_SENT', details: { host: opts.host, port: opts.port },
        }));
      }, Math.min(Math.max(1, opts.connectTimeoutMs), MAX_TIMER_MS));
      const onError = (err: Error): void => {
        fail(new IbpError('IBP_ERR_CLIENT_CONNECT_FAILED', `connecting to ${where} failed: ${err.message}`, {
          commStatus: 'NOT_SENT', cause: err, details: { host: opts.host, port: opts.port },
        }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        resolve(new Ib2Connection(socket, opts, limits));
      });
    });
  }

  /** The server sent GOAWAY: finish nothing new here (the pool must not reuse it). */
  get goingAway(): boolean {
    return this.#goingAway;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  get remote(): { host: string; port: number } {
    return { ...this.#remote };
  }

  /**
   * Runs one transaction: pre-request, push files, request → response, pull files.
   * @throws IbpError with `commStatus` NOT_SENT / ON_SENDING / COMPLETED (see the file header).
   */
  call(req: Ib2CallRequest): Promise<CallResult> {
    try {
      this.#checkCall(req);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#flags !== undefined && (req.files === undefined || req.files.length === 0)) return this.#fastCall(req);
    return this.#slowCall(req);
  }

  #checkCall(req: Ib2CallRequest): void {
    if (this.closed) throw new IbpError('IBP_ERR_CLIENT_NOT_CONNECTED', `connection to ${this.#where()} is closed`, { commStatus: 'NOT_SENT' });
    if (this.#busy) throw new IbpError('IBP_ERR_CLIENT_BUSY', `connection to ${this.#where()} is running a call`, { commStatus: 'NOT_SENT' });
    if (this.#goingAway) {
      throw new IbpError('IBP_ERR_CLIENT_NOT_CONNECTED', `connection to ${this.#where()} is going away (server sent GOAWAY)`, { commStatus: 'NOT_SENT' });
    }
    checkRequest(req, this.#limits);
  }

  async #slowCall(req: Ib2CallRequest): Promise<CallResult> {
    this.#busy = true;
    const st: CallState = { phase: 'NOT_SENT', clean: true };
    const exchange = this.#exchange(req, st);
    this.#current = exchange.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new IbpError('IBP_ERR_CLIENT_TIMEOUT', `app ${req.app}: no complete response within ${req.timeoutMs} ms`, {
        commStatus: phaseOf(st), details: { app: req.app, timeoutMs: req.timeoutMs },
      })), Math.min(Math.max(1, req.timeoutMs), MAX_TIMER_MS));
    });
    try {
      return await Promise.race([exchange, timeout]);
    } catch (err) {
      const e = this.#classify(err, st);
      if (!st.clean || e.code === 'IBP_ERR_CLIENT_TIMEOUT') {
        this.#reader.abort(e);
        this.#socket.destroy();
      }
      throw e;
    } finally {
      clearTimeout(timer);
      this.#busy = false;
      this.#current = undefined;
      if (this.#goingAway && !this.closed) this.#socket.end();
    }
  }

  /** A pipelined call without files: one write, then PRE_RESPONSE and RESPONSE through frame callbacks. */
  #fastCall(req: Ib2CallRequest): Promise<CallResult> {
    const pre: Ib2PreRequest = {
      clientNode: req.clientNode, app: req.app, jnlsno: req.jnlsno, trace: req.trace === true, fileCount: 0, pipelined: true,
    };
    let buf: Buffer;
    let sec: TxSecurity | undefined;
    if (anySecurity(this.#flags)) {
      try {
        // Sealed before anything is written: a missing key or a sealed body past the limit is NOT_SENT, connection clean.
        const preFrame = encodePreRequest(pre);
        sec = this.#txSecurity(req, this.#flags!, this.#seq);
        buf = Buffer.concat([preFrame, encodeRequest(this.#sealRequest(sec, req, preFrame))]);
      } catch (err) {
        return Promise.reject(notSent(err));
      }
    } else {
      buf = encodePipelinedRequest(pre, req.body);
    }
    this.#seq++;
    this.#busy = true;
    const p = new Promise<CallResult>((resolve, reject) => {
      const ms = Math.min(Math.max(1, req.timeoutMs), MAX_TIMER_MS);
      const call: FastCall = {
        phase: 'ON_SENDING', clean: false, req, readMs: Math.min(req.timeoutMs + 1000, MAX_TIMER_MS),
        want: FrameType.PRE_RESPONSE, flags: undefined, sec, deadline: Date.now() + ms, resolve, reject,
      };
      this.#fast = call;
      this.#armTimer(call.deadline, ms);
      this.#socket.write(buf, this.#onFastWritten);
      this.#reader.wait({ readMs: call.readMs }, this.#onFastFrame);
    });
    this.#current = p;
    return p;
  }

  #fastFrame(err: IbpError | undefined, f: Ib2Frame | null): void {
    const call = this.#fast;
    if (!call) return; // the call already ended (timed out)
    if (err) {
      this.#endFast(call, this.#classify(err, call));
      return;
    }
    let resp: Ib2Response;
    try {
      if (call.want === FrameType.PRE_RESPONSE) {
        if (f!.type !== FrameType.PRE_RESPONSE) throw unexpected(f!, 'PRE_RESPONSE');
        const pre = decodePreResponse(f!.payload);
        this.#flags = pre.securityFlags;
        this.#nonce = pre.nonce;
        call.flags = pre.securityFlags;
        if (pre.refusal) {
          // Not run: the server reads and drops the pipelined REQUEST.
          const cause = IbpError.fromJSON(pre.refusal);
          call.clean = true;
          call.phase = 'NOT_SENT';
          throw new IbpError('IBP_ERR_CLIENT_REFUSED', `app ${call.req.app}: the server refused the call: ${cause.code}: ${cause.message}`, {
            commStatus: 'NOT_SENT', cause, details: { serverCode: cause.code, ...cause.details },
          });
        }
        call.want = FrameType.RESPONSE;
        const next = this.#reader.take();
        if (next === undefined) {
          this.#reader.wait({ readMs: call.readMs }, this.#onFastFrame);
          return;
        }
        f = next;
      }
      if (f!.type !== FrameType.RESPONSE) throw unexpected(f!, 'RESPONSE');
      resp = decodeResponse(f!.payload, this.#limits.maxBodyBytes);
      if (call.sec) resp.body = openResponse(call.sec, f!.payload, resp.body);
      call.phase = 'COMPLETED';
    } catch (e) {
      this.#endFast(call, this.#classify(e, call));
      return;
    }
    if (resp.fileNames.length > 0) {
      receiveFiles(this.#reader, resp.fileNames.length, {
        fileDir: this.#fileDir, maxFileBytes: this.#limits.maxFileBytes, readMs: call.readMs, names: resp.fileNames,
        sec: call.sec?.protectsFiles ? call.sec : undefined,
      }).then(
        (paths) => this.#fastDone(call, resp, paths),
        (e: unknown) => this.#endFast(call, this.#classify(e, call)),
      );
      return;
    }
    this.#fastDone(call, resp, []);
  }

  #fastDone(call: FastCall, resp: Ib2Response, responseFiles: string[]): void {
    if (this.#fast !== call) return;
    call.clean = true;
    if (resp.error) {
      const e = IbpError.fromJSON(resp.error);
      this.#endFast(call, new IbpError(e.code, e.message, { commStatus: 'COMPLETED', retryable: e.retryable, details: e.details }));
      return;
    }
    this.#endFast(call, undefined, { body: resp.body, load: resp.load, responseFiles, securityFlags: { ...call.flags! } });
  }

  #endFast(call: FastCall, e: IbpError | undefined, result?: CallResult): void {
    if (this.#fast !== call) return;
    this.#fast = undefined;
    if (e && (!call.clean || e.code === 'IBP_ERR_CLIENT_TIMEOUT')) {
      this.#reader.abort(e);
      this.#socket.destroy();
    }
    this.#busy = false;
    this.#current = undefined;
    if (this.#goingAway && !this.closed) this.#socket.end();
    if (e) call.reject(e);
    else call.resolve(result!);
  }

  #armTimer(deadline: number, ms: number): void {
    if (this.#timer !== undefined && this.#timerDue <= deadline) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDue = deadline;
    this.#timer = setTimeout(this.#onTimer, ms);
    this.#timer.unref();
  }

  #timerFired(): void {
    this.#timer = undefined;
    const call = this.#fast;
    if (!call) return;
    const left = call.deadline - Date.now();
    if (left > 0) {
      this.#armTimer(call.deadline, left);
      return;
    }
    this.#endFast(call, new IbpError('IBP_ERR_CLIENT_TIMEOUT', `app ${call.req.app}: no complete response within ${call.req.timeoutMs} ms`, {
      commStatus: phaseOf(call), details: { app: call.req.app, timeoutMs: call.req.timeoutMs },
    }));
  }

  /** Closes gracefully: lets a call in progress finish, then ends the connection. */
  async close(): Promise<void> {
    if (this.#current) await this.#current.catch(() => {});
    if (!this.#socket.destroyed) this.#socket.end();
    const t = setTimeout(() => this.#socket.destroy(), 1000);
    t.unref();
    await this.#closedPromise;
    clearTimeout(t);
  }

  /** Closes at once; a call in progress fails with CONNECTION_LOST (in doubt if its request had left). */
  destroy(): void {
    this.#socket.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #exchange(req: Ib2CallRequest, st: CallState): Promise<CallResult> {
    const files = await checkOutgoingFiles(req.files ?? [], this.#limits.maxFileBytes);
    const s = this.#socket;
    const readMs = Math.min(req.timeoutMs + 1000, MAX_TIMER_MS);
    const pipelined = this.#flags !== undefined && files.length === 0;
    const preFrame = encodePreRequest({
      clientNode: req.clientNode, app: req.app, jnlsno: req.jnlsno, trace: req.trace === true,
      fileCount: files.length, pipelined,
    });
    const seq = this.#seq;
    // Pipelined, the request is sealed with the connection's flags before anything is written (NOT_SENT on failure).
    let sec = pipelined && anySecurity(this.#flags) ? this.#txSecurity(req, this.#flags!, seq) : undefined;
    let requestFrame = pipelined ? encodeRequest(sec ? this.#sealRequest(sec, req, preFrame) : req.body) : undefined;
    this.#seq++;
    st.clean = false;
    if (pipelined) {
      s.cork();
      s.write(preFrame);
      st.phase = 'ON_SENDING';
      s.write(requestFrame!, markUnsent(st));
      s.uncork();
    } else {
      s.write(preFrame);
    }
    const pre = decodePreResponse((await expectFrame(this.#reader, FrameType.PRE_RESPONSE, { readMs })).payload);
    this.#flags = pre.securityFlags;
    this.#nonce = pre.nonce;
    if (pre.refusal) {
      // Not run: without pipelining nothing else was sent; with it, the server reads and drops the REQUEST.
      const cause = IbpError.fromJSON(pre.refusal);
      st.clean = true;
      st.phase = 'NOT_SENT';
      throw new IbpError('IBP_ERR_CLIENT_REFUSED', `app ${req.app}: the server refused the call: ${cause.code}: ${cause.message}`, {
        commStatus: 'NOT_SENT', cause, details: { serverCode: cause.code, ...cause.details },
      });
    }
    if (!pipelined) {
      // The flags of this PRE_RESPONSE apply from here: a missing key fails the call NOT_SENT.
      sec = anySecurity(pre.securityFlags) ? this.#txSecurity(req, pre.securityFlags, seq) : undefined;
      await sendFiles(s, files, sec?.protectsFiles ? sec : undefined);
      requestFrame = encodeRequest(sec ? this.#sealRequest(sec, req, preFrame) : req.body);
      // A connection lost while the files went out may only show now: then the REQUEST is not written at all.
      if (s.destroyed || !s.writable) throw closedError('the connection closed before the request was written');
      st.phase = 'ON_SENDING';
      s.write(requestFrame, markUnsent(st));
    }
    const respFrame = await expectFrame(this.#reader, FrameType.RESPONSE, { readMs });
    const resp = decodeResponse(respFrame.payload, this.#limits.maxBodyBytes);
    if (sec) resp.body = openResponse(sec, respFrame.payload, resp.body);
    st.phase = 'COMPLETED';
    const responseFiles = await receiveFiles(this.#reader, resp.fileNames.length, {
      fileDir: this.#fileDir, maxFileBytes: this.#limits.maxFileBytes, readMs, names: resp.fileNames,
      sec: sec?.protectsFiles ? sec : undefined,
    });
    st.clean = true;
    if (resp.error) {
      const e = IbpError.fromJSON(resp.error);
      throw new IbpError(e.code, e.message, { commStatus: 'COMPLETED', retryable: e.retryable, details: e.details });
    }
    return { body: resp.body, load: resp.load, responseFiles, securityFlags: { ...pre.securityFlags } };
  }

  /** The protection of transaction `seq` under `flags`. @throws IbpError IBP_ERR_SEC_NO_KEY */
  #txSecurity(req: Ib2CallRequest, flags: SecurityFlags, seq: number): TxSecurity {
    return new TxSecurity({
      role: 'client', flags, nonce: this.#nonce, seq, keys: req.keys, node: req.node ?? '',
      minCompressSize: req.minCompressSize ?? 0, maxBodyBytes: this.#limits.maxBodyBytes,
    });
  }

  /** The sealed REQUEST body; the limit applies to what travels. @throws IbpError IBP_ERR_PROTO_FRAME_TOO_LARGE */
  #sealRequest(sec: TxSecurity, req: Ib2CallRequest, preFrame: Buffer): Buffer {
    const sealed = sec.sealRequest(req.body, preFrame.subarray(IB2_HEADER_BYTES));
    if (sealed.length > this.#limits.maxBodyBytes) {
      throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `sealed request body is ${sealed.length} bytes, at most ${this.#limits.maxBodyBytes} allowed`, {
        commStatus: 'NOT_SENT', details: { plainBytes: req.body.length },
      });
    }
    return sealed;
  }

  /** Gives every failure of a call its comm status. */
  #classify(err: unknown, st: CallState): IbpError {
    if (err instanceof IbpError && (err.code === 'IBP_ERR_CLIENT_TIMEOUT' || err.commStatus !== undefined) && !(err instanceof PeerError)) {
      return err;
    }
    if (err instanceof PeerError) {
      // The server reports a protocol error before running a transaction (or while sending response files).
      const phase: CommStatus = phaseOf(st) === 'COMPLETED' ? 'COMPLETED' : 'NOT_SENT';
      return new IbpError(err.code, err.message, { commStatus: phase, cause: err, details: err.details });
    }
    const e = err instanceof IbpError ? err : new IbpError('IBP_ERR_INTERNAL', String(err), { cause: err });
    if (e.code === 'IBP_ERR_PROTO_CONNECTION_CLOSED' || e.code === 'IBP_ERR_PROTO_TRUNCATED') {
      return new IbpError('IBP_ERR_CLIENT_CONNECTION_LOST', `connection to ${this.#where()} lost: ${e.message}`, {
        commStatus: phaseOf(st), cause: e,
      });
    }
    return new IbpError(e.code, e.message, { commStatus: phaseOf(st), cause: e, details: e.details });
  }

  #intercept(f: Ib2Frame): boolean {
    if (f.type === FrameType.GOAWAY) {
      this.#goingAway = true;
      if (!this.#busy) this.#socket.end();
      return true;
    }
    if (this.#busy) return false;
    // Nothing may arrive between calls but GOAWAY.
    this.#socket.destroy();
    return true;
  }

  #where(): string {
    return `${this.#remote.host}:${this.#remote.port}`;
  }
}

/** The opened RESPONSE body: `head` is what precedes the sealed body in the payload. */
function openResponse(sec: TxSecurity, payload: Buffer, sealedBody: Buffer): Buffer {
  return sec.openResponse(sealedBody, payload.subarray(0, payload.length - sealedBody.length));
}

/** A failure before anything was written: NOT_SENT. */
function notSent(err: unknown): IbpError {
  const e = err instanceof IbpError ? err : new IbpError('IBP_ERR_INTERNAL', String(err), { cause: err });
  return e.commStatus === 'NOT_SENT' ? e : new IbpError(e.code, e.message, { commStatus: 'NOT_SENT', cause: e, details: e.details });
}

function checkRequest(req: Ib2CallRequest, limits: ProtocolLimits): void {
  const bad = (what: string): IbpError => new IbpError('IBP_ERR_CLIENT_BAD_ARGUMENT', what, { commStatus: 'NOT_SENT' });
  const str = (name: 'clientNode' | 'app' | 'jnlsno', max: number, required: boolean): void => {
    const v = req[name];
    if (typeof v !== 'string') throw bad(`${name} must be a string`);
    const n = Buffer.byteLength(v);
    if (required && n === 0) throw bad(`${name} must not be empty`);
    if (n > max) throw bad(`${name} is ${n} bytes, at most ${max} allowed`);
  };
  str('clientNode', FIELD_MAX_BYTES.clientNode, false);
  str('app', FIELD_MAX_BYTES.app, true);
  str('jnlsno', FIELD_MAX_BYTES.jnlsno, false);
  if (!Buffer.isBuffer(req.body)) throw bad('body must be a Buffer');
  if (req.body.length > limits.maxBodyBytes) {
    throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `request body is ${req.body.length} bytes, at most ${limits.maxBodyBytes} allowed`, {
      commStatus: 'NOT_SENT',
    });
  }
  if (!(typeof req.timeoutMs === 'number' && req.timeoutMs > 0)) throw bad(`timeoutMs must be > 0, got ${String(req.timeoutMs)}`);
  if (req.files !== undefined) {
    if (!Array.isArray(req.files) || req.files.some((f) => typeof f !== 'string' || f.length === 0)) throw bad('files must be an array of paths');
    if (req.files.length > MAX_FILES) {
      throw new IbpError('IBP_ERR_PROTO_TOO_MANY_FILES', `${req.files.length} request files, at most ${MAX_FILES} allowed`, { commStatus: 'NOT_SENT' });
    }
  }
}
