/**
 * The coordinator's decision log for two-phase commit (docs/2pc.md, "Decision log"): one directory,
 * `<home>/file/2pc/`, with small JSON files per transaction id (xid):
 *
 * - `<xid>.begin.json`: written before any prepare is sent (the participants, without hosts yet);
 * - `<xid>.decision.json`: the decision, `commit` or `rollback`, written before phase two. It is created
 *   once and never replaced: the record is written to a temporary file, fsync'ed, then `link()`ed to its
 *   name, which fails when a decision is already there (first writer wins), and the directory is fsync'ed.
 *   A participant that timed out writes `rollback` the same way, so a coordinator that comes late finds
 *   the participant's abort and cannot commit;
 * - `<xid>.done.json`: every participant acknowledged phase two (nothing left for `ibp 2pc recover`);
 * - `coordinator.id`: a random id of this log, sent in every 2PC envelope, so a participant reading the log
 *   directly (co-located) can check it reads the right home and not one that happens to have the same path.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { IbpError } from '../core/errors.js';
import { createFileOnce, writeFileAtomic } from '../core/atomic-file.js';

/** The format tag of every record. */
export const TWO_PC_LOG_FORMAT = 'ibp-2pc/1';
/** The log's directory inside a home. */
export const TWO_PC_DIR = join('file', '2pc');

export type TwoPhaseDecision = 'commit' | 'rollback';

/** An address of a participant host (where its prepare was answered). */
export interface TwoPhaseHostRef {
  ip: string;
  port: number;
}

/** A participant as the log records it; `host` is null when not known (phase two then goes to every host of the node). */
export interface LoggedParticipant {
  node: string;
  app: string;
  host: TwoPhaseHostRef | null;
}

export interface BeginRecord {
  format: typeof TWO_PC_LOG_FORMAT;
  xid: string;
  coordinatorNode: string;
  createdAt: string;
  participantTimeoutMs: number;
  participants: LoggedParticipant[];
}

export interface DecisionRecord {
  format: typeof TWO_PC_LOG_FORMAT;
  xid: string;
  decision: TwoPhaseDecision;
  decidedAt: string;
  /** Who decided: `coordinator`, `recover`, or `participant <node>` (a participant's timeout: always rollback). */
  by: string;
  participants: LoggedParticipant[];
}

export interface DoneRecord {
  format: typeof TWO_PC_LOG_FORMAT;
  xid: string;
  completedAt: string;
}

/** Where one transaction stands in the log. */
export type TwoPhaseLogState = 'preparing' | 'committing' | 'rolling_back' | 'committed' | 'rolled_back';

export interface TwoPhaseLogEntry {
  xid: string;
  state: TwoPhaseLogState;
  begin: BeginRecord | undefined;
  decision: DecisionRecord | undefined;
  done: DoneRecord | undefined;
}

const XID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,55}$/;

/** True for a well-formed transaction id: 1-56 of `A-Za-z0-9_.-` (so `<xid>-<phase>` fits a 64-byte journal number), starting with a letter or digit. */
export function isXid(x: unknown): x is string {
  return typeof x === 'string' && XID_RE.test(x) && !x.includes('..');
}

/** A new transaction id: `<node>-<time>-<random>`. */
export function newXid(node: string): string {
  const n = node.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 24) || 'X';
  return `${n}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

/** The id of the decision log of `homeRoot`, or undefined when that home has none. */
export function readCoordinatorId(homeRoot: string): string | undefined {
  try {
    const id = readFileSync(join(homeRoot, TWO_PC_DIR, 'coordinator.id'), 'utf8').trim();
    return id.length > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The decision log of one home (see the file header). */
export class DecisionLog {
  readonly dir: string;
  readonly coordinatorId: string;

  private constructor(dir: string, id: string) {
    this.dir = dir;
    this.coordinatorId = id;
  }

  /**
   * Opens (creating when `create`) the log of `homeRoot`.
   * @throws IbpError IBP_ERR_2PC_LOG when the directory or its id cannot be made or read.
   */
  static open(homeRoot: string, options: { create?: boolean } = {}): DecisionLog {
    const dir = join(homeRoot, TWO_PC_DIR);
    try {
      if (options.create !== false) mkdirSync(dir, { recursive: true });
      let id = readCoordinatorId(homeRoot);
      if (id === undefined) {
        if (options.create === false) throw new Error(`${dir} has no coordinator.id`);
        createFileOnce(join(dir, 'coordinator.id'), `${randomBytes(12).toString('hex')}\n`);
        id = readCoordinatorId(homeRoot);
        if (id === undefined) throw new Error(`${dir}/coordinator.id is empty`);
      }
      return new DecisionLog(dir, id);
    } catch (err) {
      if (err instanceof IbpError) throw err;
      throw new IbpError('IBP_ERR_2PC_LOG', `the 2PC decision log ${dir} cannot be opened: ${(err as Error).message}`, { cause: err });
    }
  }

  #path(xid: string, kind: 'begin' | 'decision' | 'done'): string {
    if (!isXid(xid)) throw new IbpError('IBP_ERR_2PC_BAD_ENVELOPE', `bad transaction id ${JSON.stringify(xid)}`);
    return join(this.dir, `${xid}.${kind}.json`);
  }

  /** Records the start of a transaction (fsync + atomic rename). */
  writeBegin(rec: Omit<BeginRecord, 'format' | 'createdAt'>): BeginRecord {
    const full: BeginRecord = { format: TWO_PC_LOG_FORMAT, xid: rec.xid, coordinatorNode: rec.coordinatorNode, createdAt: new Date().toISOString(), participantTimeoutMs: rec.participantTimeoutMs, participants: rec.participants };
    this.#write(() => writeFileAtomic(this.#path(rec.xid, 'begin'), `${JSON.stringify(full)}\n`));
    return full;
  }

  /**
   * Writes the decision unless one is already logged (first writer wins) and returns the decision that stands:
   * this one, or the one found. Durable (fsync'ed file and directory) when it returns.
   */
  decide(xid: string, decision: TwoPhaseDecision, participants: LoggedParticipant[], by: string): DecisionRecord {
    const path = this.#path(xid, 'decision');
    const found = this.readDecision(xid);
    if (found) return found;
    const rec: DecisionRecord = { format: TWO_PC_LOG_FORMAT, xid, decision, decidedAt: new Date().toISOString(), by, participants };
    this.#write(() => createFileOnce(path, `${JSON.stringify(rec)}\n`));
    const standing = this.readDecision(xid);
    if (!standing) throw new IbpError('IBP_ERR_2PC_LOG', `the decision of ${xid} vanished from ${this.dir}`);
    return standing;
  }

  /** Records that every participant acknowledged phase two. */
  markDone(xid: string): void {
    const rec: DoneRecord = { format: TWO_PC_LOG_FORMAT, xid, completedAt: new Date().toISOString() };
    this.#write(() => writeFileAtomic(this.#path(xid, 'done'), `${JSON.stringify(rec)}\n`));
  }

  readBegin(xid: string): BeginRecord | undefined {
    return this.#read<BeginRecord>(this.#path(xid, 'begin'));
  }

  readDecision(xid: string): DecisionRecord | undefined {
    const d = this.#read<DecisionRecord>(this.#path(xid, 'decision'));
    if (d && d.decision !== 'commit' && d.decision !== 'rollback') {
      throw new IbpError('IBP_ERR_2PC_LOG', `${this.#path(xid, 'decision')} holds no decision`);
    }
    return d;
  }

  readDone(xid: string): DoneRecord | undefined {
    return this.#read<DoneRecord>(this.#path(xid, 'done'));
  }

  /** One entry per transaction id found in the log, sorted by xid. */
  list(): TwoPhaseLogEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new IbpError('IBP_ERR_2PC_LOG', `the 2PC decision log ${this.dir} cannot be listed: ${(err as Error).message}`, { cause: err });
    }
    const xids = new Set<string>();
    for (const n of names) {
      const m = /^(.+)\.(begin|decision|done)\.json$/.exec(n);
      if (m && isXid(m[1])) xids.add(m[1]!);
    }
    return [...xids].sort().map((xid) => this.entry(xid));
  }

  /** Where one transaction stands. */
  entry(xid: string): TwoPhaseLogEntry {
    const begin = this.readBegin(xid);
    const decision = this.readDecision(xid);
    const done = this.readDone(xid);
    let state: TwoPhaseLogState = 'preparing';
    if (decision) {
      const commit = decision.decision === 'commit';
      state = done ? (commit ? 'committed' : 'rolled_back') : commit ? 'committing' : 'rolling_back';
    }
    return { xid, state, begin, decision, done };
  }

  #read<T>(path: string): T | undefined {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new IbpError('IBP_ERR_2PC_LOG', `${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new IbpError('IBP_ERR_2PC_LOG', `${path} is not a 2PC log record: ${(err as Error).message}`, { cause: err });
    }
  }

  #write(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof IbpError) throw err;
      throw new IbpError('IBP_ERR_2PC_LOG', `the 2PC decision log ${this.dir} cannot be written: ${(err as Error).message}`, { cause: err });
    }
  }
}
