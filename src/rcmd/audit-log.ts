/**
 * The audit log: one JSON line per request (and per refused handshake), appended synchronously before the
 * answer goes back, so a request the peer saw answered is always in the log. `reopen()` follows a rotation.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** What a request asked for. */
export type AuditAction = 'auth' | 'execmd' | 'putfile' | 'getfile';

/** The outcome: `allowed` (ran / transferred), `refused` (audit, path, auth, limits: nothing ran), `failed`. */
export type AuditVerdictName = 'allowed' | 'refused' | 'failed';

/** One line of the audit log. */
export interface AuditRecord {
  /** ISO 8601 UTC. */
  time: string;
  /** `ip:port` of the peer. */
  peer: string;
  action: AuditAction;
  /** execmd: the command line as received. */
  cmd?: string;
  /** putfile/getfile: the path as received. */
  file?: string;
  verdict: AuditVerdictName;
  /** Why a request was refused or failed (the audit's reason, the error message). */
  reason?: string;
  /** The error code of a refusal or failure. */
  code?: string;
  /** The whitelist entry that allowed an execmd. */
  rule?: string;
  exitCode?: number | null;
  signal?: string | null;
  timedOut?: boolean;
  outputLimited?: boolean;
  /** Bytes transferred (files) or output (execmd). */
  bytes?: number;
  sha256?: string;
  durationMs: number;
}

/** An append-only JSON-lines file. Writes never throw (a full disk must not stop the agent answering). */
export class AuditLog {
  readonly path: string;
  #fd: number | undefined;
  #writeErrors = 0;

  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(path, 'a', 0o640);
  }

  /** Write failures since start (disk full, file gone). */
  get writeErrors(): number {
    return this.#writeErrors;
  }

  /** Appends one record (with `time` filled in when missing). */
  write(record: Omit<AuditRecord, 'time'> & { time?: string }): void {
    if (this.#fd === undefined) return;
    const { time, ...rest } = record;
    const line = `${JSON.stringify({ time: time ?? new Date().toISOString(), ...rest })}\n`;
    try {
      const buf = Buffer.from(line, 'utf8');
      let off = 0;
      while (off < buf.length) off += writeSync(this.#fd, buf, off, buf.length - off);
    } catch {
      this.#writeErrors++;
    }
  }

  /** Reopens the file at its path (after logrotate moved it). */
  reopen(): void {
    const old = this.#fd;
    try {
      this.#fd = openSync(this.path, 'a', 0o640);
    } catch {
      this.#writeErrors++;
      return;
    }
    if (old !== undefined) closeSync(old);
  }

  /** Closes the file; later writes are dropped. Idempotent. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
