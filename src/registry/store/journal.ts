/**
 * The registry journal, `run/ibms/journal`: one header line, then one record per line, appended and
 * fdatasync'd before the change it records is acknowledged.
 *
 *   IBPJOURNAL 1\n
 *   <crc32 of the JSON bytes, 8 lower-case hex> <JSON record>\n
 *
 * On reading, a last line that is incomplete (no `\n`) or fails its checksum is a torn append (a crash in
 * the middle of writing it; it was never acknowledged) and is dropped; the writer truncates it away before
 * appending. A bad line with anything after it is corruption: IBP_ERR_REGISTRY_JOURNAL naming the line.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { IbpError } from '../../core/errors.js';
import { checkRecord, type JournalRecord } from './store-ops.js';

/** The first line of every journal file. */
export const JOURNAL_HEADER = 'IBPJOURNAL 1\n';

/** One record's bytes: `<crc32 hex> <json>\n`. */
export function encodeRecord(rec: JournalRecord): Buffer {
  const json = Buffer.from(JSON.stringify(rec));
  return Buffer.concat([Buffer.from(`${hex8(crc32(json))} `), json, Buffer.from('\n')]);
}

/** What reading a journal found. */
export interface JournalContents {
  records: JournalRecord[];
  /** Bytes up to the end of the last good record (where appends continue). */
  goodBytes: number;
  /** Bytes of a torn last record (0 when none). */
  tornBytes: number;
}

const journalError = (path: string, what: string, cause?: unknown) =>
  new IbpError('IBP_ERR_REGISTRY_JOURNAL', `journal ${path}: ${what}`, { cause, details: { file: path } });

/**
 * Reads and checks a journal (a missing file reads as empty). Records must have increasing `seq`.
 * @throws IbpError IBP_ERR_REGISTRY_JOURNAL when a record in the middle is corrupt or out of order.
 */
export function readJournal(path: string): JournalContents {
  if (!existsSync(path)) return { records: [], goodBytes: 0, tornBytes: 0 };
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw journalError(path, `cannot read (${(err as NodeJS.ErrnoException).code ?? err})`, err);
  }
  const header = Buffer.from(JOURNAL_HEADER);
  if (buf.length < header.length) {
    // only a crash while the file was first written leaves less than the header: nothing was acknowledged
    if (header.subarray(0, buf.length).equals(buf)) return { records: [], goodBytes: 0, tornBytes: buf.length };
    throw journalError(path, 'not a registry journal (bad header)');
  }
  if (!buf.subarray(0, header.length).equals(header)) throw journalError(path, 'not a registry journal (bad header)');
  const records: JournalRecord[] = [];
  let pos = header.length;
  let line = 1;
  let lastSeq = 0;
  while (pos < buf.length) {
    line++;
    const nl = buf.indexOf(0x0a, pos);
    const end = nl < 0 ? buf.length : nl;
    const rec = nl < 0 ? undefined : decodeLine(buf.subarray(pos, end));
    if (rec === undefined || typeof rec === 'string') {
      if (nl < 0 || nl + 1 >= buf.length) return { records, goodBytes: pos, tornBytes: buf.length - pos };
      throw journalError(path, `record on line ${line} (byte ${pos}) is corrupt: ${rec ?? 'no end of line'}; records follow it`);
    }
    const checked = checkRecord(rec, `journal ${path} line ${line}`);
    if (checked.seq <= lastSeq) throw journalError(path, `record on line ${line} has seq ${checked.seq} after seq ${lastSeq}`);
    lastSeq = checked.seq;
    records.push(checked);
    pos = nl + 1;
  }
  return { records, goodBytes: pos, tornBytes: 0 };
}

/** The parsed JSON of a line, or a string saying why it is bad. */
function decodeLine(line: Buffer): unknown {
  if (line.length < 10 || line[8] !== 0x20) return 'malformed line';
  const crc = line.subarray(0, 8).toString('latin1');
  const json = line.subarray(9);
  if (!/^[0-9a-f]{8}$/.test(crc) || hex8(crc32(json)) !== crc) return 'checksum mismatch';
  try {
    return JSON.parse(json.toString('utf8')) as unknown;
  } catch {
    return 'not JSON';
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Appends records durably. One writer per journal file. */
export class JournalWriter {
  readonly path: string;
  #fd: number;
  #size: number;
  #broken: IbpError | undefined;

  private constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.#fd = fd;
    this.#size = size;
  }

  /**
   * Opens a journal for appending after `readJournal` checked it: creates it (header only) when missing and
   * cuts a torn last record away.
   */
  static open(path: string, contents: JournalContents): JournalWriter {
    try {
      if (contents.goodBytes === 0) writeFileAtomic(path, JOURNAL_HEADER, { mode: 0o600 });
      const fd = openSync(path, 'r+');
      if (contents.tornBytes > 0 && contents.goodBytes > 0) {
        ftruncateSync(fd, contents.goodBytes);
        fdatasyncSync(fd);
      }
      return new JournalWriter(path, fd, fstatSync(fd).size);
    } catch (err) {
      throw journalError(path, `cannot open for writing (${(err as NodeJS.ErrnoException).code ?? err})`, err);
    }
  }

  /** Bytes in the file. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends one record and waits until it is on disk. On failure the record is cut away again and the
   * error thrown (IBP_ERR_REGISTRY_JOURNAL); if even that fails, every later append fails too.
   */
  append(rec: JournalRecord): void {
    if (this.#broken) throw this.#broken;
    const bytes = encodeRecord(rec);
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(this.#fd, bytes, off, bytes.length - off, this.#size + off);
      fdatasyncSync(this.#fd);
    } catch (err) {
      try {
        ftruncateSync(this.#fd, this.#size);
      } catch (err2) {
        this.#broken = journalError(this.path, 'a failed append could not be undone; reopen the store', err2);
      }
      throw journalError(this.path, `cannot append record ${rec.seq} (${(err as NodeJS.ErrnoException).code ?? err})`, err);
    }
    this.#size += bytes.length;
  }

  /** Replaces the journal by an empty one (after a checkpoint made its records redundant). */
  reset(): void {
    try {
      writeFileAtomic(this.path, JOURNAL_HEADER, { mode: 0o600 });
      const fd = openSync(this.path, 'r+');
      closeSync(this.#fd);
      this.#fd = fd;
      this.#size = JOURNAL_HEADER.length;
      this.#broken = undefined;
    } catch (err) {
      throw journalError(this.path, `cannot start a new journal (${(err as NodeJS.ErrnoException).code ?? err})`, err);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    try { closeSync(this.#fd); } catch { /* already closed */ }
    this.#fd = -1;
    this.#broken = journalError(this.path, 'the store is closed');
  }
}
