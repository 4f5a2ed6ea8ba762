/**
 * The shared secret: a text file (`keys/ibcmd.secret`, 64 hex characters written by `ibcmd -a init`) that the
 * agent and every peer allowed to use it hold, readable by its owner only, like an ssh key.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { IbpError } from '../core/errors.js';

/** Shortest secret accepted, in bytes of its trimmed text. */
export const MIN_SECRET_LENGTH = 32;

/** Where a secret comes from: the text itself, or a file holding it. */
export interface SecretSource {
  secret?: string | Buffer;
  secretPath?: string;
}

function checkLength(secret: Buffer, where: string): Buffer {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new IbpError('IBP_ERR_RCMD_SECRET', `the shared secret ${where} has ${secret.length} bytes, expected at least ${MIN_SECRET_LENGTH}`);
  }
  return secret;
}

/**
 * Reads a secret file: its text without surrounding whitespace.
 * @throws IbpError IBP_ERR_RCMD_SECRET when it is missing, group/other readable (mode & 077), or too short.
 */
export function readSecretFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IbpError('IBP_ERR_RCMD_SECRET', `cannot read the shared secret file ${path}: ${code === 'ENOENT' ? 'no such file (ibcmd -a init writes one)' : code}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new IbpError('IBP_ERR_RCMD_SECRET', `the shared secret ${path} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new IbpError('IBP_ERR_RCMD_SECRET', `the shared secret file ${path} has mode ${(st.mode & 0o777).toString(8)}: others may read it; chmod 600 it`);
    }
    const text = readFileSync(fd, 'utf8').trim();
    return checkLength(Buffer.from(text, 'utf8'), `in ${path}`);
  } finally {
    closeSync(fd);
  }
}

/** The secret of a source: `secret` when given, else the file. @throws IbpError IBP_ERR_RCMD_SECRET. */
export function resolveSecret(src: SecretSource): Buffer {
  if (src.secret !== undefined) {
    const b = typeof src.secret === 'string' ? Buffer.from(src.secret.trim(), 'utf8') : Buffer.from(src.secret);
    return checkLength(b, 'given');
  }
  if (src.secretPath !== undefined) return readSecretFile(src.secretPath);
  throw new IbpError('IBP_ERR_RCMD_SECRET', 'no shared secret: give secret or secretPath');
}

/**
 * Writes a new random secret file (mode 0600) unless one exists. Returns true when it wrote one.
 * @example createSecretFile(join(home.keys, 'ibcmd.secret'))
 */
export function createSecretFile(path: string): boolean {
  mkdirSync(dirname(path), { recursive: true });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new IbpError('IBP_ERR_RCMD_SECRET', `cannot create ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}
