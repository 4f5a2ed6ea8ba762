/**
 * The shared load table (`<home>/run/ibma/load.table`): server load observed by clients and connect
 * suspensions, shared by every local process (features #42/#43). The original stored load in the config
 * shm with one CAS attempt; here every write is one positioned write of one whole slot. A torn, raced or
 * lost write is harmless: each slot carries a checksum and a bad slot reads as unknown. Nothing locks,
 * nothing blocks, and I/O errors are swallowed (the table is advice, never truth).
 *
 * Layout (little-endian; docs/agent.md has the table): a 64-byte header, then `slots + PROBE - 1` slots of
 * 48 bytes. A key's home slot is `hashA(key) mod slots`; it lives in the first of the PROBE slots from
 * there that holds it, so a probe window never wraps and is read with one `pread`.
 */
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { IbpError } from '../core/errors.js';
import { fnv1a32, stringHashA, stringHashB } from './hash.js';

/** Default number of (home) slots. */
export const LOAD_TABLE_SLOTS = 4096;
/** Slots probed from a key's home slot. */
export const LOAD_TABLE_PROBE = 8;
export const LOAD_TABLE_HEADER_BYTES = 64;
export const LOAD_TABLE_SLOT_BYTES = 48;
const MAGIC = Buffer.from('IBPLOAD1', 'latin1');
const FORMAT = 1;
const MAX_SLOTS = 1 << 22;
/** Open errors that mean "not writable here": the table is then opened read-only. */
const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS']);
// slot field offsets
const S_HASH_A = 0;
const S_HASH_B = 4;
const S_BUSY = 8;
const S_TOTAL = 12;
const S_SUSPENDED = 16;
const S_UPDATED = 24;
const S_CHECK = 44;

/** What the table knows about one host. */
export interface HostLoad {
  /** Busy workers the server last reported. */
  busy: number;
  /** Total workers the server last reported (0 = never reported). */
  total: number;
  /** Epoch ms before which the host should be skipped (connect failure); 0 = not suspended. */
  suspendedUntilMs: number;
  /** Epoch ms of the last write to this entry. */
  updatedAtMs: number;
}

/** Options of {@link LoadTable.open}. */
export interface LoadTableOptions {
  /** The clock stamping `updatedAtMs` (epoch ms); `Date.now` by default (tests pass a fake one). */
  clock?: () => number;
}

/** The home slot of a key in a table of `slots` slots (exposed for tests and tools). */
export function loadTableHomeSlot(hostKey: string, slots: number): number {
  return stringHashA(hostKey) % slots;
}

/**
 * A handle on the shared load table. Keys are host keys `"<node>/<ip>:<port>"` (see `hostKey()`).
 * @example
 * const table = LoadTable.open(join(home.replica, 'load.table'));
 * table.recordLoad('ECIF/127.0.0.2:18001', 3, 8);
 * table.read('ECIF/127.0.0.2:18001'); // { busy: 3, total: 8, suspendedUntilMs: 0, updatedAtMs: ... }
 */
export class LoadTable {
  #fd: number;
  #slots: number;
  #window = Buffer.alloc(LOAD_TABLE_PROBE * LOAD_TABLE_SLOT_BYTES);
  #slot = Buffer.alloc(LOAD_TABLE_SLOT_BYTES);
  #closed = false;
  #clock: () => number;
  #readOnly: boolean;

  private constructor(fd: number, slots: number, clock: () => number, readOnly: boolean) {
    this.#fd = fd;
    this.#slots = slots;
    this.#clock = clock;
    this.#readOnly = readOnly;
  }

  /**
   * Opens (creating if needed) the table at `path`. Creation is race-safe between processes: the file is
   * created without truncation, extended (never shrunk) to its size, and an already valid header wins
   * over `slots`, so every process uses the geometry of the file. A table this process may not write (another
   * user's, a read-only file system) is opened read-only: it reads what others observed, and its own writes
   * are lost, which is harmless.
   */
  static open(path: string, slots: number = LOAD_TABLE_SLOTS, options: LoadTableOptions = {}): LoadTable {
    if (!Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
      throw new IbpError('IBP_ERR_USAGE', `load table slots must be an integer in 1..${MAX_SLOTS}, got ${slots}`);
    }
    let fd: number;
    let readOnly = false;
    try {
      mkdirSync(dirname(path), { recursive: true });
      closeSync(openSync(path, 'a', 0o666)); // create if missing, never truncate
      fd = openSync(path, 'r+'); // not O_APPEND: positioned writes must land where asked
    } catch (err) {
      if (!NOT_WRITABLE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      readOnly = true;
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        return new LoadTable(-1, slots, options.clock ?? Date.now, true); // no table here and none can be made
      }
    }
    try {
      const header = Buffer.alloc(LOAD_TABLE_HEADER_BYTES);
      const n = readSync(fd, header, 0, header.length, 0);
      const existing = n === header.length ? headerSlots(header) : undefined;
      const geometry = existing ?? slots;
      const size = LOAD_TABLE_HEADER_BYTES + (geometry + LOAD_TABLE_PROBE - 1) * LOAD_TABLE_SLOT_BYTES;
      if (!readOnly && fstatSync(fd).size < size) ftruncateSync(fd, size);
      if (!readOnly && existing === undefined) {
        writeHeader(header, geometry);
        writeSync(fd, header, 0, header.length, 0);
      }
      return new LoadTable(fd, geometry, options.clock ?? Date.now, readOnly);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** True when this process may not write the table (its writes are dropped). */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** The number of home slots (from the file header). */
  get slots(): number {
    return this.#slots;
  }

  /** What is known about `hostKey`, or undefined (never written, overwritten, or its slot is bad). */
  read(hostKey: string): HostLoad | undefined {
    const a = stringHashA(hostKey);
    const b = stringHashB(hostKey);
    const n = this.#readWindow(a);
    const win = this.#window;
    for (let off = 0; off + LOAD_TABLE_SLOT_BYTES <= n; off += LOAD_TABLE_SLOT_BYTES) {
      if (slotValid(win, off) && win.readUInt32LE(off + S_HASH_A) === a && win.readUInt32LE(off + S_HASH_B) === b) {
        return {
          busy: win.readUInt32LE(off + S_BUSY),
          total: win.readUInt32LE(off + S_TOTAL),
          suspendedUntilMs: win.readDoubleLE(off + S_SUSPENDED),
          updatedAtMs: win.readDoubleLE(off + S_UPDATED),
        };
      }
    }
    return undefined;
  }

  /** Stores the load a server reported (busy/total workers); keeps a suspension already recorded. */
  recordLoad(hostKey: string, busy: number, total: number): void {
    this.#write(hostKey, (prev) => [toU32(busy), toU32(total), prev ? prev.suspendedUntilMs : 0]);
  }

  /** Marks `hostKey` to be skipped until `untilMs` (epoch ms; 0 lifts it); keeps its load. */
  suspend(hostKey: string, untilMs: number): void {
    const until = Number.isFinite(untilMs) && untilMs > 0 ? untilMs : 0;
    this.#write(hostKey, (prev) => [prev ? prev.busy : 0, prev ? prev.total : 0, until]);
  }

  /** Closes the file. Later reads return undefined and writes do nothing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#fd >= 0) try { closeSync(this.#fd); } catch { /* already closed */ }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #readWindow(hashA: number): number {
    if (this.#closed || this.#fd < 0) return 0;
    const pos = LOAD_TABLE_HEADER_BYTES + (hashA % this.#slots) * LOAD_TABLE_SLOT_BYTES;
    try {
      return readSync(this.#fd, this.#window, 0, this.#window.length, pos);
    } catch {
      return 0;
    }
  }

  #write(hostKey: string, next: (prev: HostLoad | undefined) => [number, number, number]): void {
    if (this.#closed || this.#readOnly) return;
    const a = stringHashA(hostKey);
    const b = stringHashB(hostKey);
    const n = this.#readWindow(a);
    const win = this.#window;
    let match = -1;
    let free = -1;
    let oldest = -1;
    let oldestAt = Infinity;
    for (let i = 0, off = 0; off + LOAD_TABLE_SLOT_BYTES <= n; i++, off += LOAD_TABLE_SLOT_BYTES) {
      if (!slotValid(win, off)) {
        if (free < 0) free = i;
        continue;
      }
      if (win.readUInt32LE(off + S_HASH_A) === a && win.readUInt32LE(off + S_HASH_B) === b) {
        match = i;
        break;
      }
      const at = win.readDoubleLE(off + S_UPDATED);
      if (at < oldestAt) {
        oldestAt = at;
        oldest = i;
      }
    }
    const i = match >= 0 ? match : free >= 0 ? free : oldest >= 0 ? oldest : 0;
    let prev: HostLoad | undefined;
    if (match >= 0) {
      const off = match * LOAD_TABLE_SLOT_BYTES;
      prev = {
        busy: win.readUInt32LE(off + S_BUSY),
        total: win.readUInt32LE(off + S_TOTAL),
        suspendedUntilMs: win.readDoubleLE(off + S_SUSPENDED),
        updatedAtMs: win.readDoubleLE(off + S_UPDATED),
      };
    }
    const [busy, total, suspended] = next(prev);
    const s = this.#slot;
    s.fill(0);
    s.writeUInt32LE(a, S_HASH_A);
    s.writeUInt32LE(b, S_HASH_B);
    s.writeUInt32LE(busy, S_BUSY);
    s.writeUInt32LE(total, S_TOTAL);
    s.writeDoubleLE(suspended, S_SUSPENDED);
    s.writeDoubleLE(this.#clock(), S_UPDATED);
    s.writeUInt32LE(fnv1a32(s, 0, S_CHECK), S_CHECK);
    const pos = LOAD_TABLE_HEADER_BYTES + ((a % this.#slots) + i) * LOAD_TABLE_SLOT_BYTES;
    try {
      writeSync(this.#fd, s, 0, LOAD_TABLE_SLOT_BYTES, pos);
    } catch {
      /* a lost write is harmless */
    }
  }
}

function slotValid(buf: Buffer, off: number): boolean {
  return buf.readUInt32LE(off + S_CHECK) === fnv1a32(buf, off, off + S_CHECK);
}

function toU32(n: number): number {
  if (!Number.isFinite(n) || n <= 0) return 0;
  return n >= 0xffffffff ? 0xffffffff : Math.trunc(n);
}

function writeHeader(h: Buffer, slots: number): void {
  h.fill(0);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(FORMAT, 8);
  h.writeUInt32LE(slots, 12);
  h.writeUInt32LE(LOAD_TABLE_SLOT_BYTES, 16);
  h.writeUInt32LE(LOAD_TABLE_PROBE, 20);
  h.writeUInt32LE(fnv1a32(h, 0, 60), 60);
}

/** The slot count of a valid header, or undefined. */
function headerSlots(h: Buffer): number | undefined {
  if (!h.subarray(0, 8).equals(MAGIC)) return undefined;
  if (h.readUInt32LE(60) !== fnv1a32(h, 0, 60)) return undefined;
  if (h.readUInt32LE(8) !== FORMAT || h.readUInt32LE(16) !== LOAD_TABLE_SLOT_BYTES || h.readUInt32LE(20) !== LOAD_TABLE_PROBE) {
    return undefined;
  }
  const slots = h.readUInt32LE(12);
  return slots >= 1 && slots <= MAX_SLOTS ? slots : undefined;
}
