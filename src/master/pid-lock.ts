/**
 * The master's pid file and its lock (lib-zc's `-pid-file` / `--try-lock`, SPEC §8.1 #108).
 *
 * Node.js has no flock(2). The lock is a kernel object held only while the master lives: a unix socket in
 * Linux's *abstract* namespace, bound by the master. A second bind of the same name fails with EADDRINUSE,
 * and the kernel frees the name when the master dies however it dies (SIGKILL included), so there is no stale
 * lock to detect and no race between two masters starting at once. The name is derived from the pid file's
 * real path and a random token kept beside it (`<pid-file>.lock`, mode 0600), so a local user who cannot read
 * the token cannot squat the name. The pid file itself only records the pid, for scripts
 * (`kill $(cat run/master.pid)`). The lock socket also answers a one-line JSON status to whoever connects.
 *
 * Limits: Linux only; one network namespace (two containers with separate namespaces sharing the directory do
 * not see each other's lock); deleting `<pid-file>.lock` while a master runs breaks the lock, as deleting a
 * flock'ed file would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { IbpError } from '../core/errors.js';

const TOKEN_RE = /^[0-9a-f]{32}$/;

/** What `PidFileLock.probe` finds. */
export type LockState = 'free' | 'held';

function pidFileError(pidFile: string, what: string, cause?: unknown): IbpError {
  return new IbpError('IBP_ERR_MASTER_PID_FILE', `pid file ${pidFile}: ${what}`, { cause });
}

function requireLinux(pidFile: string): void {
  if (process.platform !== 'linux') throw pidFileError(pidFile, `the master's lock needs Linux (abstract unix sockets), not ${process.platform}`);
}

/**
 * The pid file's absolute path with its directory's symlinks resolved (its identity). Without `create`, a
 * missing directory gives undefined (no master can hold a lock there).
 */
function canonical(pidFile: string, create: true): string;
function canonical(pidFile: string, create: false): string | undefined;
function canonical(pidFile: string, create: boolean): string | undefined {
  const abs = resolve(pidFile);
  try {
    if (create) mkdirSync(dirname(abs), { recursive: true });
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch (err) {
    if (!create && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw pidFileError(pidFile, `its directory is not usable: ${(err as Error).message}`, err);
  }
}

/** Reads the token beside the pid file; with `create`, makes it (atomically, with its content) if missing. */
function lockToken(path: string, create: boolean): string | undefined {
  const tokenPath = `${path}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const t = readFileSync(tokenPath, 'utf8').trim();
      if (!TOKEN_RE.test(t)) throw pidFileError(path, `${tokenPath} is corrupt; remove it while no master runs`);
      return t;
    } catch (err) {
      if (err instanceof IbpError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw pidFileError(path, `cannot read ${tokenPath}: ${(err as Error).message}`, err);
      if (!create) return undefined;
    }
    // link(2) publishes the file with its content in one step; EEXIST means another master made it first.
    const tmp = `${tokenPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      writeFileSync(tmp, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
      linkSync(tmp, tokenPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw pidFileError(path, `cannot create ${tokenPath}: ${(err as Error).message}`, err);
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* not made */
      }
    }
  }
  throw pidFileError(path, `cannot read or create ${tokenPath}`);
}

function abstractName(path: string, token: string): string {
  return `\0ibp-master/${createHash('sha256').update(`${path}\n${token}`).digest('hex').slice(0, 40)}`;
}

function bindName(name: string): Promise<Server | undefined> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? res(undefined) : rej(err)));
    server.listen(name, () => res(server));
  });
}

function recordedPid(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim() || '?';
  } catch {
    return '?';
  }
}

/** A held master lock plus the pid file it stands for. */
export class PidFileLock {
  readonly pidFile: string;
  #server: Server;
  #released = false;

  private constructor(pidFile: string, server: Server) {
    this.pidFile = pidFile;
    this.#server = server;
  }

  /**
   * Takes the lock and writes the pid file (its directory is created if missing).
   * @param status gives the JSON status line the lock socket answers.
   * @throws IbpError IBP_ERR_MASTER_LOCKED (another master holds it), IBP_ERR_MASTER_PID_FILE.
   */
  static async acquire(pidFile: string, status: () => unknown = () => ({ pid: process.pid })): Promise<PidFileLock> {
    requireLinux(pidFile);
    const path = canonical(pidFile, true);
    const server = await bindName(abstractName(path, lockToken(path, true)!)).catch((err: unknown) => {
      throw pidFileError(pidFile, `cannot bind the lock socket: ${(err as Error).message}`, err);
    });
    if (!server) throw new IbpError('IBP_ERR_MASTER_LOCKED', `${pidFile} is locked by a running master (pid ${recordedPid(path)})`);
    server.on('connection', (c) => {
      c.on('error', () => c.destroy());
      let text: string;
      try {
        text = JSON.stringify(status());
      } catch (err) {
        text = JSON.stringify({ pid: process.pid, error: (err as Error).message });
      }
      c.end(`${text}\n`);
    });
    try {
      writeFileAtomic(path, `${process.pid}\n`);
    } catch (err) {
      server.close();
      throw pidFileError(pidFile, `cannot write it: ${(err as Error).message}`, err);
    }
    return new PidFileLock(path, server);
  }

  /**
   * `--try-lock`: whether a master holds the lock now. Takes the lock for an instant when it is free
   * (as lib-zc does) and creates nothing if no master ever ran.
   */
  static async probe(pidFile: string): Promise<LockState> {
    requireLinux(pidFile);
    const path = canonical(pidFile, false);
    const token = path === undefined ? undefined : lockToken(path, false);
    if (path === undefined || token === undefined) return 'free';
    const server = await bindName(abstractName(path, token));
    if (!server) return 'held';
    await new Promise<void>((r) => server.close(() => r()));
    return 'free';
  }

  /** The status line of the master holding the lock, parsed; undefined when none runs. */
  static async status(pidFile: string, timeoutMs = 5000): Promise<unknown> {
    requireLinux(pidFile);
    const path = canonical(pidFile, false);
    const token = path === undefined ? undefined : lockToken(path, false);
    if (path === undefined || token === undefined) return undefined;
    return new Promise((res, rej) => {
      const c = createConnection(abstractName(path, token));
      let text = '';
      const timer = setTimeout(() => c.destroy(new Error('no status within the timeout')), timeoutMs);
      c.setEncoding('utf8');
      c.on('data', (d: string) => (text += d));
      c.on('end', () => {
        clearTimeout(timer);
        try {
          res(JSON.parse(text));
        } catch (err) {
          rej(err);
        }
      });
      c.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') res(undefined);
        else rej(err);
      });
    });
  }

  /** Removes the pid file (if it still names this process) and frees the lock. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (recordedPid(this.pidFile) === String(process.pid)) {
      try {
        unlinkSync(this.pidFile);
      } catch {
        /* already gone */
      }
    }
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
