/**
 * Attachment names, as the original's IBPCreateTempFile makes them: every received file is stored in the
 * receiver's `file/` as `(file_id)_(10 random visible chars).tmp`, where file_id comes from the sender's
 * file name and the random part makes the name unique.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { IbpError } from '../core/errors.js';

/** Longest file_id, in characters (all ASCII). */
export const FILE_ID_MAX_CHARS = 64;
/** Length of the random part of a stored name. */
export const RANDOM_CHARS = 10;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const FILE_ID_RE = /^[A-Za-z0-9.-]{1,64}$/;
const STORED_RE = /^([A-Za-z0-9.-]{1,64})_([A-Za-z0-9]{10})\.tmp$/;

/**
 * The file_id of a file name: the part of its base name before the first `_` (a name without `_` gives
 * its base name without the extension), keeping only `[A-Za-z0-9.-]`, at most 64 characters.
 * A name that leaves nothing gives `file`.
 * @example fileIdOf('/x/file/invoice_Ab3dE6gH9k.tmp') === 'invoice'; fileIdOf('report.pdf') === 'report'
 */
export function fileIdOf(name: string): string {
  const base = basename(String(name));
  const us = base.indexOf('_');
  let id: string;
  if (us >= 0) {
    id = base.slice(0, us);
  } else {
    const dot = base.lastIndexOf('.');
    id = dot > 0 ? base.slice(0, dot) : base;
  }
  id = id.replace(/[^A-Za-z0-9.-]/g, '').slice(0, FILE_ID_MAX_CHARS);
  return id.length === 0 || id === '.' || id === '..' ? 'file' : id;
}

/** True for a valid file_id: 1..64 characters of `[A-Za-z0-9.-]`. */
export function isFileId(id: string): boolean {
  return FILE_ID_RE.test(id);
}

/** True for a name of the form `(file_id)_(10 chars).tmp` with no directory part. */
export function isStoredFileName(name: string): boolean {
  return STORED_RE.test(name);
}

/** Ten random characters of `[A-Za-z0-9]`. */
export function randomChars(n = RANDOM_CHARS): string {
  const bytes = randomBytes(n * 2);
  let s = '';
  for (let i = 0; i < bytes.length && s.length < n; i++) {
    const b = bytes[i]!;
    if (b < 248) s += ALPHABET[b % 62]; // 248 = 4 * 62: no bias
  }
  while (s.length < n) s += ALPHABET[randomBytes(1)[0]! % 62];
  return s;
}

/**
 * A path in `fileDir` that does not exist yet: `(fileId)_(10 random chars).tmp`. Write it with exclusive
 * create ('wx'); on the (astronomically rare) EEXIST, ask again.
 * @throws IbpError IBP_ERR_FILE_BAD_NAME when `fileId` is not 1..64 characters of `[A-Za-z0-9.-]`.
 */
export function createTempFileName(fileDir: string, fileId: string): string {
  if (!isFileId(fileId) || fileId === '.' || fileId === '..') {
    throw new IbpError('IBP_ERR_FILE_BAD_NAME', `file_id ${JSON.stringify(fileId)} is not 1..64 characters of [A-Za-z0-9.-]`, {
      details: { fileId },
    });
  }
  for (let i = 0; i < 8; i++) {
    const path = join(fileDir, `${fileId}_${randomChars()}.tmp`);
    if (!existsSync(path)) return path;
  }
  throw new IbpError('IBP_ERR_INTERNAL', `no free temporary name for ${fileId} in ${fileDir}`);
}
