/**
 * Receiving and sending file bytes: an upload goes to a temporary file next to its target (created
 * exclusively), is hashed as it arrives, and replaces the target by rename only when its size and SHA-256
 * match what the sender declared; anything else removes the temporary file and leaves the target as it was.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IbpError } from '../core/errors.js';

/** Suffix of temporary upload files (left behind only by a crash; safe to delete). */
export const TEMP_SUFFIX = '.ibcmd-tmp';

/** SHA-256 in lower-case hex. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** True for a 64-character lower-case hex SHA-256. */
export function isSha256Hex(v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
}

/** An upload in progress. */
export class IncomingFile {
  readonly target: string;
  readonly #tmp: string;
  readonly #fh: FileHandle;
  readonly #hash: Hash = createHash('sha256');
  readonly #expectedSize: number;
  #received = 0;
  #done = false;

  private constructor(target: string, tmp: string, fh: FileHandle, expectedSize: number) {
    this.target = target;
    this.#tmp = tmp;
    this.#fh = fh;
    this.#expectedSize = expectedSize;
  }

  /** Creates the temporary file for `target` (an absolute path already checked by HomePaths). */
  static async open(target: string, expectedSize: number): Promise<IncomingFile> {
    const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    return new IncomingFile(target, tmp, fh, expectedSize);
  }

  /** Bytes received so far. */
  get received(): number {
    return this.#received;
  }

  /** Appends a chunk. @throws IbpError IBP_ERR_RCMD_CHECKSUM when more bytes come than declared. */
  async write(chunk: Buffer): Promise<void> {
    if (this.#received + chunk.length > this.#expectedSize) {
      throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `more than the declared ${this.#expectedSize} bytes arrived`);
    }
    this.#received += chunk.length;
    this.#hash.update(chunk);
    let off = 0;
    while (off < chunk.length) off += (await this.#fh.write(chunk, off, chunk.length - off)).bytesWritten;
  }

  /**
   * Checks size and hash, syncs, and renames over the target.
   * @throws IbpError IBP_ERR_RCMD_CHECKSUM on a mismatch (the temporary file is removed).
   */
  async commit(expectedSha256: string): Promise<{ size: number; sha256: string }> {
    const sha256 = this.#hash.digest('hex');
    if (this.#received !== this.#expectedSize) {
      throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `received ${this.#received} bytes, the sender declared ${this.#expectedSize}`);
    }
    if (sha256 !== expectedSha256) {
      throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `SHA-256 of the received bytes ${sha256} is not the sender's ${expectedSha256}`);
    }
    await this.#fh.sync();
    await this.#fh.close();
    await rename(this.#tmp, this.target);
    this.#done = true;
    await syncDir(dirname(this.target));
    return { size: this.#received, sha256 };
  }

  /** Drops the upload: closes and removes the temporary file. Idempotent; never throws. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#fh.close().catch(() => undefined);
    await unlink(this.#tmp).catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  } catch {
    /* some filesystems refuse fsync on a directory; the rename is still atomic */
  }
}

/** A file opened for sending: its size at open, and its bytes in chunks (never more than `size`). */
export interface OutgoingFile {
  size: number;
  chunks(chunkSize: number): AsyncGenerator<Buffer>;
  close(): Promise<void>;
}

/** Opens a regular file for reading without following a final symlink. */
export async function openOutgoingFile(path: string): Promise<OutgoingFile> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new IbpError('IBP_ERR_RCMD_FILE_NOT_FOUND', `${path} is not a regular file`);
    const size = st.size;
    return {
      size,
      async *chunks(chunkSize: number) {
        let pos = 0;
        while (pos < size) {
          const buf = Buffer.allocUnsafe(Math.min(chunkSize, size - pos));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new IbpError('IBP_ERR_RCMD_CHECKSUM', `${path} shrank while it was read`);
          pos += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        }
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
