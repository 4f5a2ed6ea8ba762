/**
 * The log destinations of this process: one asynchronous pino destination (sonic-boom) per file
 * path or standard stream, shared by every logger that writes there, reopened for rotation and
 * flushed and closed on shutdown. A write after close is dropped, never thrown: a late log line
 * must not take a daemon down.
 */
import { closeSync, fstat, mkdirSync, openSync, stat } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import { IbpError } from './errors.js';
import type { LogOutput } from './log-output.js';

/** sonic-boom, with the public fields its type declarations leave out. */
type SonicBoom = ReturnType<typeof pino.destination> & { readonly fd: number; readonly destroyed: boolean };

/** Internals of sonic-boom 4: a write in flight, a reopen pending. */
interface SonicState {
  _writing?: boolean;
  _reopening?: boolean;
}

interface Entry {
  readonly key: string;
  readonly output: LogOutput;
  readonly sonic: SonicBoom;
  refs: number;
  /** Set on EPIPE or after close: writes are dropped. */
  dead: boolean;
  reported: Set<string>;
}

const entries = new Map<string, Entry>();

/** What a pino logger writes to: a thin shell over a shared destination that never throws. */
export class LogStream {
  readonly #entry: Entry;
  #released = false;

  constructor(entry: Entry) {
    this.#entry = entry;
  }

  /** The output this stream writes to. */
  get output(): LogOutput {
    return this.#entry.output;
  }

  write(chunk: string): void {
    const e = this.#entry;
    if (e.dead || e.sonic.destroyed) return;
    e.sonic.write(chunk);
  }

  /** Calls `cb` once everything written so far has reached the kernel. */
  flush(cb?: (err?: Error) => void): void {
    waitIdle(this.#entry).then(
      () => cb?.(),
      (err: Error) => cb?.(err),
    );
  }

  /** Gives back this stream's share of the destination; the last one closes it. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const e = this.#entry;
    e.refs -= 1;
    if (e.refs > 0) return;
    if (entries.get(e.key) === e) entries.delete(e.key);
    await closeEntry(e);
  }
}

/**
 * A stream on the destination for `output`, opening it on first use. A file's directory is
 * created and the file opened once synchronously, so a bad path fails here with a coded error.
 * @throws IbpError IBP_ERR_LOG_OPEN when the file cannot be created or opened.
 */
export function acquireLogStream(output: LogOutput): LogStream {
  const key = output.kind === 'file' ? `file:${output.path}` : output.kind;
  let entry = entries.get(key);
  if (entry === undefined || entry.sonic.destroyed) {
    entry = openEntry(key, output);
    entries.set(key, entry);
  }
  entry.refs += 1;
  return new LogStream(entry);
}

function openEntry(key: string, output: LogOutput): Entry {
  let sonic: SonicBoom;
  if (output.kind === 'file') {
    try {
      mkdirSync(dirname(output.path), { recursive: true });
      closeSync(openSync(output.path, 'a'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      throw new IbpError('IBP_ERR_LOG_OPEN', `cannot open log file ${output.path}: ${code}`, {
        cause: err,
        details: { path: output.path },
      });
    }
    sonic = pino.destination({ dest: output.path, sync: false, minLength: 0, mkdir: true }) as SonicBoom;
  } else {
    sonic = pino.destination({ dest: output.kind === 'stdout' ? 1 : 2, sync: false, minLength: 0 }) as SonicBoom;
  }
  const entry: Entry = { key, output, sonic, refs: 0, dead: false, reported: new Set() };
  sonic.on('error', (err: NodeJS.ErrnoException) => onError(entry, err));
  return entry;
}

/** A destination error is reported once per kind on stderr and never thrown. */
function onError(entry: Entry, err: NodeJS.ErrnoException): void {
  const code = err.code ?? err.message;
  // A broken pipe, or a file that never opened, takes no more writes.
  if (code === 'EPIPE' || entry.sonic.fd < 0) entry.dead = true;
  if (entry.reported.has(code) || entry.output.kind === 'stderr') return;
  entry.reported.add(code);
  const where = entry.output.kind === 'file' ? entry.output.path : entry.output.kind;
  process.stderr.write(`ibp: log destination ${where}: ${code}\n`);
}

/** Resolves when nothing is buffered or being written (or the destination is gone or failed). */
function waitIdle(entry: Entry): Promise<void> {
  const s = entry.sonic;
  const state = s as unknown as SonicState;
  return new Promise((resolveIdle) => {
    const check = (): void => {
      // In async mode with minLength 0 a write starts as soon as none is running, so "not
      // writing" means idle, or stuck after a write error (reported on stderr): either way, done.
      if (state._writing === true && !entry.dead && !s.destroyed) return;
      done();
    };
    // 'ready' is emitted just before the buffered data starts to be written: look after that.
    const ready = (): void => process.nextTick(check);
    const failed = (): void => done();
    const done = (): void => {
      s.off('drain', check).off('ready', ready).off('close', failed).off('error', failed);
      resolveIdle();
    };
    s.on('drain', check).on('ready', ready).on('close', failed).on('error', failed);
    check();
  });
}

function closeEntry(entry: Entry): Promise<void> {
  const s = entry.sonic;
  if (s.destroyed || entry.dead) {
    entry.dead = true;
    return Promise.resolve();
  }
  return new Promise((resolveClosed) => {
    const done = (): void => {
      s.off('close', done).off('error', done);
      entry.dead = true;
      resolveClosed();
    };
    s.on('close', done).on('error', done);
    const end = (): void => {
      try {
        s.end();
      } catch {
        done();
      }
    };
    // sonic-boom 4 drops a reopen that is still pending when end() is called, and then never
    // writes nor closes: end only once the new file is open.
    if ((s as unknown as SonicState)._reopening === true) s.once('ready', end);
    else end();
  });
}

/** Reopens every file destination at its path (after a rename by a rotation tool); data is not lost. */
export function reopenAllLogs(): void {
  for (const e of entries.values()) {
    if (e.output.kind !== 'file' || e.dead || e.sonic.destroyed) continue;
    try {
      e.sonic.reopen();
    } catch (err) {
      onError(e, err as NodeJS.ErrnoException);
    }
  }
}

/** Resolves when every destination has written out what it holds. */
export async function flushAllLogs(): Promise<void> {
  await Promise.all([...entries.values()].map((e) => waitIdle(e)));
}

/** Flushes and closes every destination of this process; loggers on them then drop their records. */
export async function closeAllLogs(): Promise<void> {
  const all = [...entries.values()];
  entries.clear();
  await Promise.all(all.map((e) => closeEntry(e)));
}

/**
 * Reopens each file destination whose path no longer names the file it writes to (renamed or
 * deleted by `baklog`, logpipe's size rotation, logrotate without copytruncate).
 * @returns how many destinations were reopened.
 */
export async function checkLogRotation(): Promise<number> {
  const files = [...entries.values()].filter((e) => e.output.kind === 'file' && !e.dead && e.sonic.fd >= 0);
  const moved = await Promise.all(files.map((e) => isMoved(e)));
  let n = 0;
  files.forEach((e, i) => {
    if (!moved[i] || e.dead || e.sonic.destroyed) return;
    try {
      e.sonic.reopen();
      n += 1;
    } catch (err) {
      onError(e, err as NodeJS.ErrnoException);
    }
  });
  return n;
}

function isMoved(entry: Entry): Promise<boolean> {
  const path = (entry.output as { path: string }).path;
  return new Promise((resolveMoved) => {
    fstat(entry.sonic.fd, (err1, open) => {
      if (err1) return resolveMoved(false);
      stat(path, (err2, named) => {
        if (err2) return resolveMoved(err2.code === 'ENOENT');
        resolveMoved(named.ino !== open.ino || named.dev !== open.dev);
      });
    });
  });
}

/**
 * Runs `checkLogRotation` every `intervalMs` (timer `unref()`ed), so a rotated file is picked up
 * without a signal. Returns a function that stops it.
 */
export function watchLogRotation(intervalMs = 1000): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    checkLogRotation().finally(() => {
      running = false;
    });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Makes `signal` (default `SIGUSR1`, as in the original) reopen every log file. Installing a
 * listener also stops Node from starting its inspector on SIGUSR1. Returns an uninstall function.
 */
export function installLogReopenOnSignal(signal: NodeJS.Signals = 'SIGUSR1'): () => void {
  const handler = (): void => reopenAllLogs();
  process.on(signal, handler);
  return () => {
    process.off(signal, handler);
  };
}
