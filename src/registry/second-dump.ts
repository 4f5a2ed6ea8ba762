/**
 * The registry's redundant config copy (`ibms.misc.second_config_dump`, SPEC §2.2): after every `save_config`
 * the saved files are copied to the ibcmd agent named there, with the secret `keys/second_dump.secret` of the
 * registry home (a copy of the target's `keys/ibcmd.secret`). The save never waits for the copy: it is fired
 * and forgotten (retried by `copyFilesToSecondDump`), its outcome goes to the event log
 * (`second_config_dump` / `second_config_dump_failed`) and is reported by the next save's reply.
 *
 * Copies run one at a time, in save order; saves made while a copy runs are folded into one more copy, which
 * reads the files as they are then (the newest save), so the target never ends with an older set.
 */
import { basename, join } from 'node:path';
import { loadIbmsConf } from '../core/config/index.js';
import { toIbpError, type IbpErrorData } from '../core/errors.js';
import type { IbpLogger } from '../core/log.js';
import { copyFilesToSecondDump, type SecondDumpOptions, type SecondDumpResult } from '../rcmd/index.js';

/** The secret used for the copy, inside the registry home. */
export const SECOND_DUMP_SECRET_FILE = join('keys', 'second_dump.secret');

/** How the last finished copy went (in the `save_config` reply as `secondDump.last`). */
export interface SecondDumpOutcome {
  state: 'ok' | 'failed';
  address: string;
  finishedAtMs: number;
  attempts: number;
  files: string[];
  /** The first failure, when `state` is 'failed'. */
  error?: IbpErrorData;
}

/** The `secondDump` member of a `save_config` reply (absent when `second_config_dump` is not set). */
export interface SecondDumpReply {
  address: string;
  /** 'pending': this save's copy started (or will run right after the one in progress). */
  state: 'pending';
  /** The previous copy's outcome, if one finished since the registry started. */
  last?: SecondDumpOutcome;
}

/** Options of {@link SecondDumper}. */
export interface SecondDumperOptions {
  homeRoot: string;
  /** ibms.conf, read at every save (setting or changing `second_config_dump` needs no restart). */
  confPath: string;
  log: IbpLogger;
  events: IbpLogger;
  /** Passed to `copyFilesToSecondDump` (tests shorten the backoff). */
  copyOptions?: Omit<SecondDumpOptions, 'log' | 'signal'>;
}

/** Runs the copies of one registry worker. */
export class SecondDumper {
  readonly #o: SecondDumperOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #again: { address: string; files: string[] } | undefined;
  #last: SecondDumpOutcome | undefined;

  constructor(o: SecondDumperOptions) {
    this.#o = o;
  }

  /** The last finished copy. */
  get last(): SecondDumpOutcome | undefined {
    return this.#last;
  }

  /** A promise of the copies in progress (tests). */
  idle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /**
   * Called right after a save with the files written. Starts (or queues) the copy when `second_config_dump`
   * is set, and returns what the reply says; never throws (a bad ibms.conf is logged and reported as failed).
   */
  afterSave(files: readonly string[]): SecondDumpReply | undefined {
    let address: string;
    try {
      address = loadIbmsConf(this.#o.confPath).ibms.misc.second_config_dump;
    } catch (err) {
      this.#o.log.error({ err: toIbpError(err) }, 'second config dump: cannot read ibms.conf; no copy made');
      return undefined;
    }
    if (address === '') return undefined;
    const last = this.#last;
    this.#again = { address, files: [...files] };
    this.#running ??= this.#loop().finally(() => (this.#running = undefined));
    return last === undefined ? { address, state: 'pending' } : { address, state: 'pending', last };
  }

  /** Stops retrying (the worker stops); a copy in flight reports what is left as failed. */
  close(): void {
    this.#abort.abort();
  }

  async #loop(): Promise<void> {
    while (this.#again !== undefined && !this.#abort.signal.aborted) {
      const { address, files } = this.#again;
      this.#again = undefined;
      const r = await copyFilesToSecondDump(
        {
          address,
          secretPath: join(this.#o.homeRoot, SECOND_DUMP_SECRET_FILE),
          files: files.map((local) => ({ local, remote: `etc/${basename(local)}` })),
        },
        { ...this.#o.copyOptions, log: this.#o.log, signal: this.#abort.signal },
      );
      this.#record(r);
    }
  }

  #record(r: SecondDumpResult): void {
    const files = [...r.copied.map((f) => f.remote), ...r.failed.map((f) => f.remote)];
    this.#last = { state: r.ok ? 'ok' : 'failed', address: r.address, finishedAtMs: Date.now(), attempts: r.attempts, files };
    if (r.ok) {
      this.#o.events.info({ event: 'second_config_dump', address: r.address, attempts: r.attempts, files: r.copied, ms: r.durationMs }, `config copied to ${r.address}`);
      return;
    }
    this.#last.error = r.failed[0]?.error;
    this.#o.events.error(
      { event: 'second_config_dump_failed', address: r.address, attempts: r.attempts, failed: r.failed, copied: r.copied.map((f) => f.remote), ms: r.durationMs },
      `second config dump to ${r.address} failed: ${r.failed[0]?.error.code ?? ''} ${r.failed[0]?.error.message ?? ''} (the saved files are intact here; the next save_config tries again)`,
    );
  }
}

const dumpers = new WeakMap<object, SecondDumper>();

/** The dumper of one API context (made on first use). */
export function secondDumperOf(owner: object, make: () => SecondDumperOptions): SecondDumper {
  let d = dumpers.get(owner);
  if (d === undefined) {
    d = new SecondDumper(make());
    dumpers.set(owner, d);
  }
  return d;
}
