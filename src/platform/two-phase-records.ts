/**
 * A participant's own 2PC records (docs/2pc.md, "Participant"): one file per transaction id and app in
 * `<home>/file/2pc/participant/`, written (fsync + atomic rename) before the app's `prepare` runs and removed
 * once its `commit` or `rollback` succeeded. They let the platform find, after any crash, every transaction
 * this home may hold prepared, with the coordinator to ask and the time after which to ask.
 *
 * A record being resolved by a worker carries a lock file `<record>.lock` with that worker's pid (a lock of a
 * dead process is taken over).
 */
import { mkdirSync, openSync, closeSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { IbpError, writeFileAtomic } from '../core/index.js';
import type { CoordinatorRef } from '../client/index.js';

/** Where a participant record stands: written before `prepare` ran (`preparing`) and after it succeeded (`prepared`). */
export type ParticipantState = 'preparing' | 'prepared';

export interface ParticipantRecord {
  format: 'ibp-2pc-participant/1';
  xid: string;
  app: string;
  state: ParticipantState;
  coordinator: CoordinatorRef;
  /** The participant timeout the coordinator asked for, ms. */
  timeoutMs: number;
  /** When the decision is asked if phase two has not come (epoch ms). */
  deadlineMs: number;
  /** The node that sent the prepare. */
  clientNode: string;
  createdAt: string;
}

/** The participant record directory of a home. */
export function participantDirOf(homeRoot: string): string {
  return join(homeRoot, 'file', '2pc', 'participant');
}

export class ParticipantRecords {
  readonly dir: string;

  constructor(homeRoot: string) {
    this.dir = participantDirOf(homeRoot);
  }

  #path(xid: string, app: string): string {
    return join(this.dir, `${xid}~${encodeURIComponent(app)}.json`);
  }

  /** Writes a record durably. @throws IbpError IBP_ERR_2PC_LOG */
  write(rec: ParticipantRecord): void {
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileAtomic(this.#path(rec.xid, rec.app), `${JSON.stringify(rec)}\n`);
    } catch (err) {
      throw new IbpError('IBP_ERR_2PC_LOG', `the participant record of ${rec.xid} (${rec.app}) cannot be written in ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  read(xid: string, app: string): ParticipantRecord | undefined {
    return readRecord(this.#path(xid, app));
  }

  /** Removes a record (and its lock); a missing one is fine. */
  remove(xid: string, app: string): void {
    for (const p of [this.#path(xid, app), `${this.#path(xid, app)}.lock`]) {
      try {
        unlinkSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new IbpError('IBP_ERR_2PC_LOG', `${p} cannot be removed: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /** Every readable record (none when the directory does not exist). */
  list(): ParticipantRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: ParticipantRecord[] = [];
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const r = readRecord(join(this.dir, n));
      if (r) out.push(r);
    }
    return out;
  }

  /** Takes the resolution lock of a record; false when a live process holds it. */
  claim(xid: string, app: string): boolean {
    const lock = `${this.#path(xid, app)}.lock`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(lock, 'wx');
        try {
          writeSync(fd, String(process.pid));
        } finally {
          closeSync(fd);
        }
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      }
      const holder = Number.parseInt(readText(lock) ?? '', 10);
      if (Number.isSafeInteger(holder) && holder > 0 && (holder === process.pid || isAlive(holder))) return false;
      try {
        unlinkSync(lock);
      } catch { /* someone else took it over */ }
    }
    return false;
  }

  /** Gives the resolution lock back. */
  release(xid: string, app: string): void {
    try {
      unlinkSync(`${this.#path(xid, app)}.lock`);
    } catch { /* removed with the record */ }
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readRecord(path: string): ParticipantRecord | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as ParticipantRecord;
    return r && r.format === 'ibp-2pc-participant/1' ? r : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
