/**
 * The bulletin board: a small fixed-layout file in run/ shared by the master and its workers (the original's
 * bulletin shm). Each worker owns one 64-byte slot and rewrites it with one positioned write on every state
 * change; the master and `ibas -s bbstat|bbdetail` read the whole board with one positioned read. No locks: a
 * reader that catches a slot mid-write sees a stale state for one read, which is harmless.
 *
 * Layout (little endian): header 64 bytes = magic "IBBB" (4), version u8 @4, slot count u16 @6,
 * master pid u32 @8, waiting u8 @12 (1 = the master has connections waiting for an idle worker),
 * started-at f64 ms @16. Slot i at 64 + 64·i: state u8 @0, pid u32 @4, index u16 @8, connections u16 @10,
 * transactions served u32 @12, since f64 ms @16 (time of the last state change), deadline f64 ms @24
 * (busy: when the current transaction passes T; 0 otherwise), app (32 bytes UTF-8, NUL padded) @32.
 */
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

export const BOARD_MAGIC = 0x42424249; // "IBBB" read as u32 LE
export const HEADER_BYTES = 64;
export const SLOT_BYTES = 64;
const APP_BYTES = 32;

export type WorkerState = 'empty' | 'starting' | 'idle' | 'busy' | 'retiring';
const STATE_CODES: Record<WorkerState, number> = { empty: 0, starting: 1, idle: 2, busy: 3, retiring: 4 };
const STATE_NAMES: WorkerState[] = ['empty', 'starting', 'idle', 'busy', 'retiring'];

export interface SlotView {
  slot: number;
  state: WorkerState;
  pid: number;
  index: number;
  connections: number;
  transactions: number;
  sinceMs: number;
  deadlineMs: number;
  app: string;
}

export interface BoardView {
  masterPid: number;
  waiting: boolean;
  startedAtMs: number;
  slots: SlotView[];
}

/** Creates (or resets) a board file for `slots` workers. Called by the master at start. */
export function createBoard(path: string, slots: number, masterPid: number): void {
  const fd = openSync(path, 'w');
  try {
    const buf = Buffer.alloc(HEADER_BYTES + SLOT_BYTES * slots);
    buf.writeUInt32LE(BOARD_MAGIC, 0);
    buf.writeUInt8(1, 4);
    buf.writeUInt16LE(slots, 6);
    buf.writeUInt32LE(masterPid, 8);
    buf.writeDoubleLE(Date.now(), 16);
    writeSync(fd, buf, 0, buf.length, 0);
    ftruncateSync(fd, buf.length);
  } finally {
    closeSync(fd);
  }
}

/** Reads a whole board (the master's and the CLI's view). */
export class BoardReader {
  #fd: number;
  #buf: Buffer;
  readonly slots: number;

  constructor(path: string) {
    this.#fd = openSync(path, 'r+');
    const head = Buffer.alloc(HEADER_BYTES);
    readSync(this.#fd, head, 0, HEADER_BYTES, 0);
    if (head.readUInt32LE(0) !== BOARD_MAGIC) {
      closeSync(this.#fd);
      throw new Error(`${path} is not an ibas bulletin board`);
    }
    this.slots = head.readUInt16LE(6);
    this.#buf = Buffer.alloc(HEADER_BYTES + SLOT_BYTES * this.slots);
  }

  /** One positioned read of the whole board into a reused buffer. */
  refresh(): Buffer {
    readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
    return this.#buf;
  }

  stateOf(slot: number): WorkerState {
    return STATE_NAMES[this.#buf[HEADER_BYTES + SLOT_BYTES * slot]!] ?? 'empty';
  }

  connectionsOf(slot: number): number {
    return this.#buf.readUInt16LE(HEADER_BYTES + SLOT_BYTES * slot + 10);
  }

  pidOf(slot: number): number {
    return this.#buf.readUInt32LE(HEADER_BYTES + SLOT_BYTES * slot + 4);
  }

  transactionsOf(slot: number): number {
    return this.#buf.readUInt32LE(HEADER_BYTES + SLOT_BYTES * slot + 12);
  }

  deadlineOf(slot: number): number {
    return this.#buf.readDoubleLE(HEADER_BYTES + SLOT_BYTES * slot + 24);
  }

  sinceOf(slot: number): number {
    return this.#buf.readDoubleLE(HEADER_BYTES + SLOT_BYTES * slot + 16);
  }

  /** Sets the header's waiting flag (the master has queued connections). */
  setWaiting(waiting: boolean): void {
    writeSync(this.#fd, Buffer.from([waiting ? 1 : 0]), 0, 1, 12);
  }

  /** Shows a just-forked worker as `starting` in its slot until the worker writes its own state. */
  markStarting(slot: number, pid: number, index: number): void {
    const b = Buffer.alloc(SLOT_BYTES);
    b[0] = STATE_CODES.starting;
    b.writeUInt32LE(pid >>> 0, 4);
    b.writeUInt16LE(index, 8);
    b.writeDoubleLE(Date.now(), 16);
    writeSync(this.#fd, b, 0, SLOT_BYTES, HEADER_BYTES + SLOT_BYTES * slot);
  }

  /** Clears a slot (its worker is gone). */
  clearSlot(slot: number): void {
    writeSync(this.#fd, Buffer.alloc(SLOT_BYTES), 0, SLOT_BYTES, HEADER_BYTES + SLOT_BYTES * slot);
  }

  view(): BoardView {
    const b = this.refresh();
    const slots: SlotView[] = [];
    for (let i = 0; i < this.slots; i++) slots.push(decodeSlot(b, i));
    return { masterPid: b.readUInt32LE(8), waiting: b[12] === 1, startedAtMs: b.readDoubleLE(16), slots };
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function decodeSlot(b: Buffer, slot: number): SlotView {
  const o = HEADER_BYTES + SLOT_BYTES * slot;
  const appRaw = b.subarray(o + 32, o + 32 + APP_BYTES);
  const end = appRaw.indexOf(0);
  return {
    slot,
    state: STATE_NAMES[b[o]!] ?? 'empty',
    pid: b.readUInt32LE(o + 4),
    index: b.readUInt16LE(o + 8),
    connections: b.readUInt16LE(o + 10),
    transactions: b.readUInt32LE(o + 12),
    sinceMs: b.readDoubleLE(o + 16),
    deadlineMs: b.readDoubleLE(o + 24),
    app: appRaw.subarray(0, end < 0 ? APP_BYTES : end).toString('utf8'),
  };
}

/** A worker's handle on its own slot. */
export class BoardSlot {
  #fd: number;
  #slot: Buffer = Buffer.alloc(SLOT_BYTES);
  #board: Buffer;
  #pos: number;
  #slots: number;

  constructor(path: string, slot: number, index: number, pid: number = process.pid) {
    this.#fd = openSync(path, 'r+');
    const head = Buffer.alloc(HEADER_BYTES);
    readSync(this.#fd, head, 0, HEADER_BYTES, 0);
    this.#slots = head.readUInt16LE(6);
    if (slot < 0 || slot >= this.#slots) throw new RangeError(`slot ${slot} is outside the board (${this.#slots} slots)`);
    this.#board = Buffer.alloc(HEADER_BYTES + SLOT_BYTES * this.#slots);
    this.#pos = HEADER_BYTES + SLOT_BYTES * slot;
    this.#slot.writeUInt32LE(pid, 4);
    this.#slot.writeUInt16LE(index, 8);
  }

  /** Writes this worker's state (one pwrite). */
  set(state: WorkerState, fields: { connections?: number; transactions?: number; deadlineMs?: number; app?: string } = {}): void {
    const s = this.#slot;
    s[0] = STATE_CODES[state];
    if (fields.connections !== undefined) s.writeUInt16LE(Math.min(fields.connections, 0xffff), 10);
    if (fields.transactions !== undefined) s.writeUInt32LE(fields.transactions >>> 0, 12);
    s.writeDoubleLE(Date.now(), 16);
    s.writeDoubleLE(fields.deadlineMs ?? 0, 24);
    if (fields.app !== undefined) {
      s.fill(0, 32);
      s.write(fields.app, 32, APP_BYTES, 'utf8');
    }
    writeSync(this.#fd, s, 0, SLOT_BYTES, this.#pos);
  }

  /** Workers in a transaction and workers alive, from one read of the board; and the master's waiting flag. */
  load(): { busy: number; total: number; waiting: boolean } {
    const b = this.#board;
    readSync(this.#fd, b, 0, b.length, 0);
    let busy = 0;
    let total = 0;
    for (let i = 0; i < this.#slots; i++) {
      const st = b[HEADER_BYTES + SLOT_BYTES * i]!;
      if (st === 3) busy++;
      if (st === 2 || st === 3) total++;
    }
    return { busy, total, waiting: b[12] === 1 };
  }

  close(): void {
    closeSync(this.#fd);
  }
}
