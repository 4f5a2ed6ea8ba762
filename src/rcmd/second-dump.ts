/**
 * The registry's redundant config copy (`ibms.misc.second_config_dump`, SPEC §2.2, feature #23): after each
 * `save_config`, the saved files are copied to an ibcmd agent on another host. The copy must never hold up or
 * fail the save, so this function never throws: it reads the files at once (one consistent set), retries with
 * backoff what failed for a reason that may pass, and resolves with a report.
 */
import { readFile } from 'node:fs/promises';
import { IbpError, toIbpError, type IbpErrorData } from '../core/errors.js';
import { RcmdClient } from './client.js';
import type { SecretSource } from './secret.js';

/** The agent and the files of one copy. */
export interface SecondDumpTarget extends SecretSource {
  /** `ip:port` of the ibcmd agent (the value of `second_config_dump`). */
  address: string;
  /** Each local file (as just saved) and its path relative to the agent's home. */
  files: { local: string; remote: string }[];
}

/** The few logger methods used (a pino logger fits). */
export interface SecondDumpLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of {@link copyFilesToSecondDump}. */
export interface SecondDumpOptions {
  /** Attempts after the first one (default 3). */
  retries?: number;
  /** Wait before the first retry, doubled each time (default 500 ms). */
  backoffMs?: number;
  /** Longest wait between attempts (default 10 s). */
  maxBackoffMs?: number;
  connectTimeoutMs?: number;
  readTimeoutMs?: number;
  log?: SecondDumpLog;
  /** Stops retrying (the registry is stopping); what is left is reported as failed. */
  signal?: AbortSignal;
}

/** What a copy did: `ok` when every file arrived, verified by SHA-256 on both ends. */
export interface SecondDumpResult {
  ok: boolean;
  address: string;
  /** Attempts made (1 = no retry was needed). */
  attempts: number;
  copied: { local: string; remote: string; size: number; sha256: string }[];
  failed: { local: string; remote: string; error: IbpErrorData }[];
  durationMs: number;
}

/** Failures that a retry cannot fix. */
const PERMANENT = new Set(['IBP_ERR_RCMD_PATH_REFUSED', 'IBP_ERR_RCMD_FILE_TOO_LARGE', 'IBP_ERR_RCMD_AUTH_FAILED',
  'IBP_ERR_RCMD_SECRET', 'IBP_ERR_USAGE', 'IBP_ERR_CONFIG_READ']);

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Copies the files to the agent; resolves with a report, never rejects.
 * @example
 * // in save_config, after the files are written (not awaited: the save does not wait for the copy)
 * void copyFilesToSecondDump(
 *   { address: conf.ibms.misc.second_config_dump, secretPath: join(home.keys, 'second_dump.secret'),
 *     files: saved.map((p) => ({ local: p, remote: `etc/${basename(p)}` })) },
 *   { log },
 * ).then((r) => { if (!r.ok) log.error({ failed: r.failed }, 'second config dump failed'); });
 */
export async function copyFilesToSecondDump(target: SecondDumpTarget, opts: SecondDumpOptions = {}): Promise<SecondDumpResult> {
  const t0 = performance.now();
  const result: SecondDumpResult = { ok: false, address: String(target?.address), attempts: 0, copied: [], failed: [], durationMs: 0 };
  const finish = (): SecondDumpResult => {
    result.ok = result.failed.length === 0;
    result.durationMs = Math.round(performance.now() - t0);
    if (result.ok) opts.log?.info({ address: result.address, files: result.copied.length, attempts: result.attempts }, 'second config dump copied');
    else opts.log?.warn({ address: result.address, failed: result.failed, attempts: result.attempts }, 'second config dump failed');
    return result;
  };
  try {
    const retries = Math.max(0, opts.retries ?? 3);
    // one consistent set: what was saved now, even if a later save rewrites the files during a retry
    let pending: { local: string; remote: string; data: Buffer; error?: IbpError }[] = [];
    for (const f of target.files) {
      try {
        pending.push({ ...f, data: await readFile(f.local) });
      } catch (err) {
        const e = new IbpError('IBP_ERR_CONFIG_READ', `cannot read ${f.local} for the second config dump: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
        result.failed.push({ local: f.local, remote: f.remote, error: e.toJSON() });
      }
    }
    for (let attempt = 0; attempt <= retries && pending.length > 0; attempt++) {
      if (attempt > 0) {
        const wait = Math.min((opts.backoffMs ?? 500) * 2 ** (attempt - 1), opts.maxBackoffMs ?? 10_000);
        opts.log?.warn({ address: result.address, attempt, waitMs: wait, error: pending[0]?.error?.message }, 'second config dump: retrying');
        await sleep(wait, opts.signal);
        if (opts.signal?.aborted) break;
      }
      result.attempts++;
      const left: typeof pending = [];
      let client: RcmdClient | undefined;
      try {
        client = new RcmdClient({ ...target, connectTimeoutMs: opts.connectTimeoutMs ?? 5000, readTimeoutMs: opts.readTimeoutMs ?? 30_000 });
        for (const f of pending) {
          try {
            const r = await client.putFile(f.data, f.remote);
            result.copied.push({ local: f.local, remote: f.remote, size: r.size, sha256: r.sha256 });
          } catch (err) {
            const e = toIbpError(err);
            if (PERMANENT.has(e.code)) result.failed.push({ local: f.local, remote: f.remote, error: e.toJSON() });
            else left.push({ ...f, error: e });
          }
        }
      } catch (err) {
        // no client at all (bad address, no secret): nothing a retry can change
        const e = toIbpError(err);
        for (const f of pending) result.failed.push({ local: f.local, remote: f.remote, error: e.toJSON() });
        pending = [];
        break;
      } finally {
        await client?.close().catch(() => undefined);
      }
      pending = left;
    }
    for (const f of pending) {
      const e = f.error ?? new IbpError('IBP_ERR_RCMD_CONNECT', 'the copy was stopped before it was made', { retryable: true });
      result.failed.push({ local: f.local, remote: f.remote, error: e.toJSON() });
    }
  } catch (err) {
    result.failed.push({ local: '', remote: '', error: toIbpError(err).toJSON() });
  }
  return finish();
}
