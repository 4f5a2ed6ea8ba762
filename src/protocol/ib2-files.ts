/**
 * Moving attachments over IB2, the same way in both directions (push files: client → server; pull files:
 * server → client): FILE_BEGIN (index, size, name), then FILE_DATA chunks that add up to exactly `size`.
 * The receiver stores each file in its file/ dir as (file_id)_(10 random chars).tmp with exclusive create,
 * enforces the declared and the maximum size, and deletes every file of the batch when anything fails.
 */
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Socket } from 'node:net';
import { IbpError, toIbpError } from '../core/errors.js';
import { createTempFileName, fileIdOf } from './file-names.js';
import type { FrameReader, NextOptions } from './frame-reader.js';
import type { Ib2Frame } from './ib2-decoder.js';
import {
  FILE_CHUNK_BYTES, FIELD_MAX_BYTES, FrameType, IB2_HEADER_BYTES, allocFileData, decodeError, decodeFileBegin,
  encodeFileBegin, encodeFrame, frameTypeName, truncateUtf8, type FrameTypeCode,
} from './ib2-frames.js';
import { write } from './socket-io.js';
import { MAX_FILES } from './types.js';

/** An error the peer reported in an ERROR frame (rebuilt from its data). */
export class PeerError extends IbpError {}

/** A file about to be sent: where it is, the name the peer sees, its size when checked. */
export interface OutgoingFile {
  path: string;
  name: string;
  size: number;
}

/**
 * Checks files before anything is sent: at most 4, each a readable regular file within `maxFileBytes`.
 * @throws IbpError IBP_ERR_PROTO_TOO_MANY_FILES, IBP_ERR_FILE_NOT_FOUND, IBP_ERR_FILE_TOO_LARGE
 */
export async function checkOutgoingFiles(paths: readonly string[], maxFileBytes: number): Promise<OutgoingFile[]> {
  if (paths.length > MAX_FILES) {
    throw new IbpError('IBP_ERR_PROTO_TOO_MANY_FILES', `${paths.length} files, at most ${MAX_FILES} allowed`);
  }
  const out: OutgoingFile[] = [];
  for (const path of paths) {
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
    } catch (err) {
      throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `attachment ${path} cannot be sent: ${(err as Error).message}`, {
        cause: err, details: { path },
      });
    }
    if (size > maxFileBytes) {
      throw new IbpError('IBP_ERR_FILE_TOO_LARGE', `attachment ${path} is ${size} bytes, at most ${maxFileBytes} allowed`, {
        details: { path, size, max: maxFileBytes },
      });
    }
    out.push({ path, name: truncateUtf8(basename(path), FIELD_MAX_BYTES.fileName), size });
  }
  return out;
}

/** Seals file frames (signing or encryption agreed: docs/protocol.md §Security). `TxSecurity` is one. */
export interface FileSealer {
  sealFileBegin(fields: Buffer): Buffer;
  sealFileData(chunk: Buffer): Buffer;
}

/** Opens sealed file frames. `TxSecurity` is one. */
export interface FileOpener {
  openFileBegin(payload: Buffer): Buffer;
  openFileData(payload: Buffer): Buffer;
}

/** Streams `files` as FILE_BEGIN + FILE_DATA frames, honouring socket backpressure; sealed when `sec` is given. */
export async function sendFiles(socket: Socket, files: readonly OutgoingFile[], sec?: FileSealer): Promise<void> {
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    let fh: FileHandle;
    try {
      fh = await open(f.path, 'r');
    } catch (err) {
      throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `attachment ${f.path} cannot be opened: ${(err as Error).message}`, { cause: err });
    }
    try {
      const begin = encodeFileBegin({ index: i, size: f.size, name: f.name });
      await write(socket, sec ? encodeFrame(FrameType.FILE_BEGIN, sec.sealFileBegin(begin.subarray(IB2_HEADER_BYTES))) : begin);
      let pos = 0;
      while (pos < f.size) {
        const n = Math.min(FILE_CHUNK_BYTES, f.size - pos);
        // Plain: read straight into the frame. Sealed: read the chunk, then seal it into its frame.
        const buf = sec ? Buffer.allocUnsafe(n) : allocFileData(n);
        const at = sec ? 0 : IB2_HEADER_BYTES;
        let got = 0;
        while (got < n) {
          const { bytesRead } = await fh.read(buf, at + got, n - got, pos + got);
          if (bytesRead === 0) {
            throw new IbpError('IBP_ERR_FILE_NOT_FOUND', `attachment ${f.path} shrank to ${pos + got} bytes while being sent (was ${f.size})`);
          }
          got += bytesRead;
        }
        pos += n;
        await write(socket, sec ? encodeFrame(FrameType.FILE_DATA, sec.sealFileData(buf)) : buf);
      }
    } finally {
      await fh.close().catch(() => {});
    }
  }
}

/** The next frame, which must be of type `type`; an ERROR frame is thrown as a PeerError. */
export async function expectFrame(reader: FrameReader<Ib2Frame>, type: FrameTypeCode, opts: NextOptions): Promise<Ib2Frame> {
  const f = await reader.next(opts);
  if (f === null) throw new IbpError('IBP_ERR_INTERNAL', 'expectFrame: idle wait');
  if (f.type === type) return f;
  throw unexpected(f, frameTypeName(type)!);
}

/** The error for a frame that the exchange does not allow here (an ERROR frame becomes the peer's error). */
export function unexpected(f: Ib2Frame, expected: string): IbpError {
  if (f.type === FrameType.ERROR) {
    const data = decodeError(f.payload);
    const rebuilt = IbpError.fromJSON(data);
    return new PeerError(rebuilt.code, `peer reported: ${rebuilt.message}`, { details: rebuilt.details });
  }
  return new IbpError('IBP_ERR_PROTO_UNEXPECTED_FRAME', `expected ${expected}, got ${frameTypeName(f.type)}`, {
    details: { expected, got: frameTypeName(f.type) },
  });
}

export interface ReceiveOptions {
  fileDir: string;
  maxFileBytes: number;
  readMs: number;
  /** Names announced earlier (the RESPONSE's list): FILE_BEGIN must repeat them in order. */
  names?: readonly string[];
  /** Read and drop the files instead of storing them (a refused pipelined request). */
  discard?: boolean;
  /** Opens sealed FILE_BEGIN and FILE_DATA payloads (signing or encryption agreed). */
  sec?: FileOpener;
}

/** Receives `count` files; returns their stored paths (none when discarding). */
export async function receiveFiles(reader: FrameReader<Ib2Frame>, count: number, o: ReceiveOptions): Promise<string[]> {
  const paths: string[] = [];
  let fh: FileHandle | undefined;
  try {
    for (let i = 0; i < count; i++) {
      const beginPayload = (await expectFrame(reader, FrameType.FILE_BEGIN, { readMs: o.readMs })).payload;
      const begin = decodeFileBegin(o.sec ? o.sec.openFileBegin(beginPayload) : beginPayload);
      if (begin.index !== i) throw fileField('index', `expected ${i}, got ${begin.index}`);
      if (o.names && begin.name !== o.names[i]) throw fileField('name', `expected ${JSON.stringify(o.names[i])}, got ${JSON.stringify(begin.name)}`);
      if (begin.size > o.maxFileBytes) {
        throw new IbpError('IBP_ERR_FILE_TOO_LARGE', `attachment ${JSON.stringify(begin.name)} declares ${begin.size} bytes, at most ${o.maxFileBytes} allowed`, {
          details: { name: begin.name, size: begin.size, max: o.maxFileBytes },
        });
      }
      if (!o.discard) {
        const opened = await openExclusive(o.fileDir, fileIdOf(begin.name));
        fh = opened.fh;
        paths.push(opened.path);
      }
      let left = begin.size;
      while (left > 0) {
        const raw = (await expectFrame(reader, FrameType.FILE_DATA, { readMs: o.readMs })).payload;
        const data = o.sec ? o.sec.openFileData(raw) : raw;
        if (data.length === 0) throw fileField('data', 'empty FILE_DATA frame');
        if (data.length > left) throw fileField('data', `${data.length - left} bytes past the declared size ${begin.size}`);
        left -= data.length;
        if (fh) await writeAll(fh, data);
      }
      if (fh) {
        const h = fh;
        fh = undefined;
        await h.close();
      }
    }
    return paths;
  } catch (err) {
    if (fh) await fh.close().catch(() => {});
    await Promise.all(paths.map((p) => unlink(p).catch(() => {})));
    throw err;
  }
}

/** Opens a new (file_id)_(10 chars).tmp in `fileDir` with exclusive create. */
async function openExclusive(fileDir: string, fileId: string): Promise<{ path: string; fh: FileHandle }> {
  for (let attempt = 0; ; attempt++) {
    const path = createTempFileName(fileDir, fileId);
    try {
      return { path, fh: await open(path, 'wx', 0o640) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 3) continue;
      throw toIbpError(err);
    }
  }
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

function fileField(field: string, what: string): IbpError {
  return new IbpError('IBP_ERR_PROTO_BAD_FIELD', `FILE_${field === 'data' ? 'DATA' : 'BEGIN'}.${field}: ${what}`, {
    details: { field },
  });
}
