/** The transaction context handed to app code: the platform's implementation of `TransactionContext`. */
import { writeFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Logger } from 'pino';
import { IbpError } from '../core/errors.js';
import type { TransactionContext } from '../app/context.js';
import { MAX_FILES, createTempFileName, fileIdOf, type IncomingTransaction } from '../protocol/index.js';

export interface TxContextOptions {
  tx: IncomingTransaction;
  thisNode: string;
  commTimeoutSec: number;
  appTimeoutSec: number;
  workerIndex: number;
  workerCount: number;
  fileDir: string;
  kv: (key: string) => string | undefined;
  /** Makes the app's logger for this transaction (called at most once, on first use of `ctx.log`). */
  log: () => Logger;
  /** Sends the response now; the platform calls it at most once. */
  sendAhead: () => void;
}

export class TxContext implements TransactionContext {
  readonly request: Buffer;
  readonly requestFiles: readonly string[];
  readonly thisNode: string;
  readonly app: string;
  readonly clientNode: string;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly jnlsno: string;
  readonly commTimeoutSec: number;
  readonly appTimeoutSec: number;
  readonly workerIndex: number;
  readonly workerCount: number;
  readonly trace: boolean;
  readonly protocol: 'IB2' | 'IB1' | 'HTTP';
  readonly responseFiles: string[] = [];
  addonInfo: Record<string, unknown> | undefined;
  #chunks: Buffer[] = [];
  #sent = false;
  #opts: TxContextOptions;

  constructor(opts: TxContextOptions) {
    const { tx } = opts;
    this.#opts = opts;
    this.request = tx.body;
    this.requestFiles = Object.freeze([...tx.requestFiles]);
    this.thisNode = opts.thisNode;
    this.app = tx.app;
    this.clientNode = tx.clientNode;
    this.clientIp = tx.clientIp;
    this.clientPort = tx.clientPort;
    this.jnlsno = tx.jnlsno;
    this.trace = tx.trace;
    this.protocol = tx.protocol;
    this.commTimeoutSec = opts.commTimeoutSec;
    this.appTimeoutSec = opts.appTimeoutSec;
    this.workerIndex = opts.workerIndex;
    this.workerCount = opts.workerCount;
  }

  #log: Logger | undefined;

  /** The app's logger, a child with this transaction's journal number (made on first use: most calls never log). */
  get log(): Logger {
    if (!this.#log) this.#log = this.#opts.log();
    return this.#log;
  }

  /** True once the response went out (ahead or at the end). */
  get sent(): boolean {
    return this.#sent;
  }

  markSent(): void {
    this.#sent = true;
  }

  /** The response body as set by the app. */
  responseBody(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
  }

  requestText(): string {
    return this.request.toString('utf8');
  }

  requestJson<T = unknown>(): T {
    return JSON.parse(this.request.toString('utf8')) as T;
  }

  respond(body: Buffer | string | object): void {
    this.#chunks = [toBuffer(body)];
  }

  appendResponse(chunk: Buffer | string): void {
    this.#chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }

  requestFileById(fileId: string): string | undefined {
    return this.requestFiles.find((p) => fileIdOf(p) === fileId);
  }

  putResponseFile(path: string): void {
    const full = resolve(this.#opts.fileDir, path);
    const rel = relative(this.#opts.fileDir, full);
    if (rel.startsWith('..') || isAbsolute(rel) || rel.includes('/')) {
      throw new IbpError('IBP_ERR_FILE_BAD_NAME', `response file ${path} is not in ${this.#opts.fileDir}`);
    }
    if (this.responseFiles.length >= MAX_FILES) {
      throw new IbpError('IBP_ERR_PROTO_TOO_MANY_FILES', `at most ${MAX_FILES} response files`);
    }
    this.responseFiles.push(full);
  }

  createTempFile(fileId: string): string {
    for (let attempt = 0; ; attempt++) {
      const path = createTempFileName(this.#opts.fileDir, fileId);
      try {
        writeFileSync(path, '', { flag: 'wx' });
        return path;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
      }
    }
  }

  pathOfFile(name: string): string {
    return resolve(this.#opts.fileDir, name);
  }

  kv(key: string): string | undefined {
    return this.#opts.kv(key);
  }

  sendResponseAhead(): boolean {
    if (this.#sent) return false;
    this.#opts.sendAhead();
    return true;
  }

  setTransactionAddonInfo(info: { channel?: string; busiJnlsno?: string; busiCode?: string; responseCode?: number; text?: string }): void {
    this.addonInfo = { ...info };
  }
}

function toBuffer(body: Buffer | string | object): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(JSON.stringify(body));
}
