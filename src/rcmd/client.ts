/**
 * The Node API of ibcmd: run an audited command on an agent, upload and download files. One connection per
 * client, opened on first use (and again after it broke), requests one at a time in call order.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { IbpError, toIbpError } from '../core/errors.js';
import { FrameChannel, type Frame } from './channel.js';
import { IncomingFile, isSha256Hex } from './file-store.js';
import { resolveSecret, type SecretSource } from './secret.js';
import { DATA_CHUNK, FrameType, frameTypeName, jsonBody, parseJsonBody } from './wire.js';
import { parseAgentAddress } from './address.js';
import { errorOf, openAgentChannel } from './client-connect.js';

/** Options of {@link RcmdClient}: where the agent is, and the shared secret. */
export interface RcmdClientOptions extends SecretSource {
  /** `ip:port` (or give host and port). */
  address?: string;
  host?: string;
  port?: number;
  /** Connecting and authenticating (default 10 s). */
  connectTimeoutMs?: number;
  /** Longest silence of the agent during a transfer or an answer (default 30 s). */
  readTimeoutMs?: number;
  /** Largest file getFile accepts (default 1 GiB). */
  maxFileSize?: number;
}

/** Options of one execCommand. */
export interface ExecOptions {
  /** Ask the agent for a shorter time limit than its exec.timeout. */
  timeoutMs?: number;
  /** Each chunk of output as it arrives (it is also collected in the result). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

/** How a remote command ended. */
export interface ExecResult {
  /** The exit code; null when a signal ended the command (see `signal`). */
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  /** As the agent measured it. */
  durationMs: number;
  /** The agent ended it at its time limit. */
  timedOut: boolean;
  /** The agent ended it at its output limit (the output is cut there). */
  outputLimited: boolean;
}

/** A completed transfer, as both ends verified it. */
export interface FileTransferResult {
  /** The path relative to the agent's home. */
  path: string;
  size: number;
  sha256: string;
  durationMs: number;
}

const NO_WAIT_LIMIT_MS = 86_400_000 + 60_000;
/** Errors the agent answers without closing the connection. */
const KEEPS_CONNECTION = new Set(['IBP_ERR_RCMD_COMMAND_REFUSED', 'IBP_ERR_RCMD_PATH_REFUSED', 'IBP_ERR_RCMD_FILE_NOT_FOUND',
  'IBP_ERR_RCMD_FILE_TOO_LARGE', 'IBP_ERR_RCMD_BUSY', 'IBP_ERR_RCMD_EXEC_FAILED']);

function unexpected(f: Frame, wanted: string): IbpError {
  return new IbpError('IBP_ERR_RCMD_FRAME', `got a ${frameTypeName(f.type)} frame, expected ${wanted}`);
}

/**
 * A client of one ibcmd agent.
 * @example
 * await using c = new RcmdClient({ address: '127.0.0.1:26001', secretPath: join(home.keys, 'ibcmd.secret') });
 * const r = await c.execCommand('ibas -s status');
 * process.stdout.write(r.stdout);
 * await c.putFile('etc/ibp_nodes.conf', 'etc/ibp_nodes.conf');
 */
export class RcmdClient {
  readonly #host: string;
  readonly #port: number;
  readonly #secret: Buffer;
  readonly #connectTimeoutMs: number;
  readonly #readTimeoutMs: number;
  readonly #maxFileSize: number;
  #channel: FrameChannel | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** @throws IbpError IBP_ERR_RCMD_SECRET (no usable secret), IBP_ERR_USAGE (bad address). */
  constructor(opts: RcmdClientOptions) {
    const addr = opts.address !== undefined ? parseAgentAddress(opts.address) : { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 };
    if (!Number.isInteger(addr.port) || addr.port < 1 || addr.port > 65535) {
      throw new IbpError('IBP_ERR_USAGE', `ibcmd port ${String(addr.port)}: expected 1..65535`);
    }
    this.#host = addr.host;
    this.#port = addr.port;
    this.#secret = resolveSecret(opts);
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#readTimeoutMs = opts.readTimeoutMs ?? 30_000;
    this.#maxFileSize = opts.maxFileSize ?? 1024 * 1024 * 1024;
  }

  /** `ip:port` of the agent. */
  get address(): string {
    return `${this.#host}:${this.#port}`;
  }

  /**
   * Runs a command on the agent (after its audit) and collects its output.
   * @throws IbpError IBP_ERR_RCMD_COMMAND_REFUSED (details.stage, details.reason), _EXEC_FAILED, _BUSY,
   *   _AUTH_FAILED, _CONNECT, _TIMEOUT.
   */
  execCommand(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.#serial(async (ch) => {
      await ch.send(FrameType.EXEC, jsonBody(opts.timeoutMs !== undefined ? { cmd, timeoutMs: opts.timeoutMs } : { cmd }));
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const wait = opts.timeoutMs !== undefined ? opts.timeoutMs + this.#readTimeoutMs : NO_WAIT_LIMIT_MS;
      for (;;) {
        const f = await ch.next(wait, 'command output or exit');
        if (f.type === FrameType.OUTPUT && f.body.length >= 1 && (f.body[0] === 1 || f.body[0] === 2)) {
          const chunk = f.body.subarray(1);
          (f.body[0] === 1 ? out : err).push(chunk);
          opts.onOutput?.(f.body[0] === 1 ? 'stdout' : 'stderr', chunk);
        } else if (f.type === FrameType.EXIT) {
          const e = parseJsonBody(f.body, 'EXIT');
          return {
            exitCode: typeof e.exitCode === 'number' ? e.exitCode : null,
            signal: typeof e.signal === 'string' ? e.signal : null,
            stdout: Buffer.concat(out),
            stderr: Buffer.concat(err),
            durationMs: typeof e.durationMs === 'number' ? e.durationMs : 0,
            timedOut: e.timedOut === true,
            outputLimited: e.outputLimited === true,
          };
        } else if (f.type === FrameType.ERROR) throw errorOf(f);
        else throw unexpected(f, 'OUTPUT, EXIT or ERROR');
      }
    });
  }

  /**
   * Uploads a local file (path) or bytes to `remotePath` (relative to the agent's home). The agent writes it
   * atomically after checking size and SHA-256, and answers with the hash it computed, checked here too.
   * @throws IbpError IBP_ERR_RCMD_PATH_REFUSED, _FILE_TOO_LARGE, _CHECKSUM, _CONNECT, _TIMEOUT, _AUTH_FAILED.
   */
  putFile(source: string | Buffer, remotePath: string): Promise<FileTransferResult> {
    return this.#serial(async (ch) => {
      const t0 = performance.now();
      const fh = typeof source === 'string' ? await open(resolvePath(source), 'r') : undefined;
      try {
        const size = fh !== undefined ? (await fh.stat()).size : (source as Buffer).length;
        await ch.send(FrameType.PUT, jsonBody({ path: remotePath, size }));
        const ready = await ch.next(this.#readTimeoutMs, 'READY');
        if (ready.type === FrameType.ERROR) throw errorOf(ready);
        if (ready.type !== FrameType.READY) throw unexpected(ready, 'READY or ERROR');
        const hash = createHash('sha256');
        try {
          for (let pos = 0; pos < size;) {
            let chunk: Buffer;
            if (fh !== undefined) {
              const buf = Buffer.allocUnsafe(Math.min(DATA_CHUNK, size - pos));
              const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
              if (bytesRead === 0) throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `${String(source)} shrank while it was sent`);
              chunk = buf.subarray(0, bytesRead);
            } else chunk = (source as Buffer).subarray(pos, pos + DATA_CHUNK);
            hash.update(chunk);
            await ch.send(FrameType.DATA, chunk);
            pos += chunk.length;
          }
          const sha256 = hash.digest('hex');
          await ch.send(FrameType.END, jsonBody({ size, sha256 }));
          const done = await ch.next(this.#readTimeoutMs, 'DONE');
          if (done.type === FrameType.ERROR) throw errorOf(done);
          if (done.type !== FrameType.DONE) throw unexpected(done, 'DONE or ERROR');
          const d = parseJsonBody(done.body, 'DONE');
          if (d.sha256 !== sha256 || d.size !== size) {
            throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `the agent stored ${String(d.size)} bytes with SHA-256 ${String(d.sha256)}, sent ${size} bytes with ${sha256}`);
          }
          return { path: String(d.path), size, sha256, durationMs: Math.round(performance.now() - t0) };
        } catch (err) {
          // the agent may have answered ERROR and closed while we were sending: its reason is the better one
          const answer = await ch.next(200, 'ERROR').catch(() => undefined);
          throw answer?.type === FrameType.ERROR ? errorOf(answer) : err;
        }
      } finally {
        await fh?.close();
      }
    });
  }

  /**
   * Downloads `remotePath` (relative to the agent's home) into memory, checking its size and SHA-256.
   * @throws IbpError IBP_ERR_RCMD_FILE_NOT_FOUND, _PATH_REFUSED, _FILE_TOO_LARGE, _CHECKSUM, _CONNECT, _TIMEOUT.
   */
  async getFile(remotePath: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.#get(remotePath, (chunk) => { parts.push(chunk); });
    return Buffer.concat(parts);
  }

  /** Downloads `remotePath` to `localPath`, written atomically (temporary file, checked, renamed). */
  getFileTo(remotePath: string, localPath: string): Promise<FileTransferResult> {
    let incoming: IncomingFile | undefined;
    return this.#get(remotePath, async (chunk, size) => {
      incoming ??= await IncomingFile.open(resolvePath(localPath), size);
      await incoming.write(chunk);
    }, async (size, sha256) => {
      incoming ??= await IncomingFile.open(resolvePath(localPath), size);
      await incoming.commit(sha256);
    }).catch(async (err: unknown) => {
      await incoming?.abort();
      throw err;
    });
  }

  #get(
    remotePath: string,
    onChunk: (chunk: Buffer, size: number) => void | Promise<void>,
    onEnd?: (size: number, sha256: string) => Promise<void>,
  ): Promise<FileTransferResult> {
    return this.#serial(async (ch) => {
      const t0 = performance.now();
      await ch.send(FrameType.GET, jsonBody({ path: remotePath }));
      const meta = await ch.next(this.#readTimeoutMs, 'META');
      if (meta.type === FrameType.ERROR) throw errorOf(meta);
      if (meta.type !== FrameType.META) throw unexpected(meta, 'META or ERROR');
      const m = parseJsonBody(meta.body, 'META');
      const size = m.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new IbpError('IBP_ERR_RCMD_FRAME', 'META without a size');
      if (size > this.#maxFileSize) throw new IbpError('IBP_ERR_RCMD_FILE_TOO_LARGE', `${remotePath} has ${size} bytes, over the client's maxFileSize ${this.#maxFileSize}`);
      const hash = createHash('sha256');
      let received = 0;
      for (;;) {
        const f = await ch.next(this.#readTimeoutMs, 'DATA or END');
        if (f.type === FrameType.DATA) {
          received += f.body.length;
          if (received > size) throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `more than the announced ${size} bytes of ${remotePath} arrived`);
          hash.update(f.body);
          await onChunk(f.body, size);
        } else if (f.type === FrameType.END) {
          const e = parseJsonBody(f.body, 'END');
          const sha256 = hash.digest('hex');
          if (received !== size || !isSha256Hex(e.sha256) || e.sha256 !== sha256) {
            throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `${remotePath}: received ${received}/${size} bytes with SHA-256 ${sha256}, the agent sent ${String(e.sha256)}`);
          }
          await onEnd?.(size, sha256);
          return { path: typeof m.path === 'string' ? m.path : remotePath, size, sha256, durationMs: Math.round(performance.now() - t0) };
        } else if (f.type === FrameType.ERROR) throw errorOf(f);
        else throw unexpected(f, 'DATA, END or ERROR');
      }
    });
  }

  /** Runs one request on the connection, after the ones before it. */
  #serial<T>(fn: (ch: FrameChannel) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new IbpError('IBP_ERR_RCMD_CONNECT', 'the ibcmd client is closed');
      const ch = this.#channel !== undefined && !this.#channel.broken ? this.#channel : await this.#connect();
      try {
        return await fn(ch);
      } catch (err) {
        const e = toIbpError(err);
        if (!KEEPS_CONNECTION.has(e.code)) this.#drop(ch);
        throw e;
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #drop(ch: FrameChannel): void {
    ch.destroy();
    if (this.#channel === ch) this.#channel = undefined;
  }

  async #connect(): Promise<FrameChannel> {
    if (this.#channel !== undefined) this.#drop(this.#channel);
    this.#channel = await openAgentChannel(this.#host, this.#port, this.#secret, this.#connectTimeoutMs);
    return this.#channel;
  }

  /** Closes the connection after the requests already made. Idempotent. */
  async close(): Promise<void> {
    await this.#queue;
    this.#closed = true;
    if (this.#channel !== undefined) {
      this.#channel.end(undefined, 500);
      this.#channel = undefined;
    }
  }

  /** Drops the connection at once (a request in flight fails with IBP_ERR_RCMD_CONNECT). */
  destroy(): void {
    this.#closed = true;
    if (this.#channel !== undefined) this.#drop(this.#channel);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
