/**
 * The seeded input mutator shared by the fuzz tests and `bench/fuzz.ts`: byte-level mutations (bit flips,
 * byte sets, inserts, deletes, truncation, duplication), structure-aware ones for the IBP wire formats
 * (IB2 length and type tampering, u16 string-length tampering, IB1 length tampering, dropping, repeating and
 * swapping whole IB2 frames) and splicing in valid frames from a corpus (the test vectors). Every random
 * choice comes from one seeded PRNG, so an input is replayed from its seed.
 */

/** A PRNG returning floats in [0, 1). */
export type Rng = () => number;

/** mulberry32: a tiny seeded PRNG, so a failure can be replayed from its seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes numbers into one 32-bit seed (input `i` of target `t` under run seed `s`: mixSeed(s, t, i)). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h >>> 0;
}

export interface MutateOptions {
  /** Valid frames or messages to splice in (default: none). */
  corpus?: readonly Buffer[];
  /** Tokens to insert (e.g. HTTP syntax); default: none. */
  dictionary?: readonly Buffer[];
  /** At most this many mutations per input (default 6; at least 1 is applied). */
  maxRounds?: number;
  /** Inputs are cut to this many bytes (default 65536). */
  maxBytes?: number;
}

const INTERESTING_U8 = [0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x20, 0x31, 0x32, 0x40, 0x41, 0x49, 0x42, 0x7f, 0x80, 0xc0, 0xfe, 0xff];
const INTERESTING_U16 = [0, 1, 2, 63, 64, 65, 127, 128, 255, 256, 4095, 4096, 4097, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_U32 = [0, 1, 2, 7, 8, 200, 201, 266, 267, 4096, 65535, 65536, 1 << 20, (1 << 20) + 1, 1 << 24, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const IB2 = [0x49, 0x42, 0x32];
/** Delimiters of a text protocol, after which a dictionary token is most useful. */
const DELIMS = new Set([0x2f, 0x20, 0x3a, 0x2c, 0x0a, 0x3d, 0x3f]);

/** Offsets of the whole IB2 frames at the start of `b` (stops at the first header that does not fit or match). */
export function ib2FrameOffsets(b: Buffer): Array<{ at: number; end: number }> {
  const out: Array<{ at: number; end: number }> = [];
  let at = 0;
  while (at + 8 <= b.length && b[at] === IB2[0] && b[at + 1] === IB2[1] && b[at + 2] === IB2[2]) {
    const end = at + 8 + b.readUInt32BE(at + 4);
    if (end > b.length) break;
    out.push({ at, end });
    at = end;
  }
  return out;
}

/** Positions where an IB2 or IB1 magic starts (any alignment). */
function magicOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 3 < b.length && out.length < 64; i++) {
    if (b[i] === 0x49 && b[i + 1] === 0x42 && (b[i + 2] === 0x32 || b[i + 2] === 0x31)) out.push(i);
  }
  return out;
}

/** Applies 1..maxRounds random mutations to a copy of `input`. */
export function mutate(r: Rng, input: Buffer, o: MutateOptions = {}): Buffer {
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  const maxBytes = o.maxBytes ?? 65536;
  let b = Buffer.from(input);
  let rounds = 1;
  while (rounds < (o.maxRounds ?? 6) && r() < 0.5) rounds++;
  for (let k = 0; k < rounds; k++) {
    const at = int(b.length + 1);
    switch (int(14)) {
      case 0: // bit flips
        for (let n = 1 + int(4); n > 0 && b.length > 0; n--) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // a byte set to an interesting or random value
        if (b.length > 0) b[int(b.length)] = r() < 0.5 ? pick(INTERESTING_U8) : int(256);
        break;
      case 2: { // insert random bytes, or one byte repeated
        const n = 1 + int(r() < 0.9 ? 16 : 1024);
        const ins = r() < 0.5 ? Buffer.alloc(n, int(256)) : Buffer.from(Array.from({ length: n }, () => int(256)));
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 3: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(16)))]);
        break;
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      case 5: { // duplicate a range somewhere else
        const from = int(b.length + 1);
        const piece = b.subarray(from, from + 1 + int(64));
        b = Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
        break;
      }
      case 6: case 7: { // tamper with an IB2 payload length or an IB1 length field
        const m = magicOffsets(b);
        if (m.length === 0 || b.length < 8) break;
        const i = pick(m);
        const ib1 = b[i + 2] === 0x31;
        const off = ib1 ? (r() < 0.5 ? i + 3 : i + 4 + (b[i + 3] ?? 0)) : i + 4;
        if (ib1 && off === i + 3) b[off] = r() < 0.5 ? pick(INTERESTING_U8) : (b[off]! + pick([-2, -1, 1, 2]) + 256) % 256;
        else if (off + 4 <= b.length) {
          const cur = b.readUInt32BE(off);
          const v = r() < 0.6 ? pick(INTERESTING_U32) : (cur + pick([-2, -1, 1, 2, 8, 100]) + 0x1_0000_0000) % 0x1_0000_0000;
          b.writeUInt32BE(v >>> 0, off);
        }
        break;
      }
      case 8: // a u16 string length (or any u16) inside a payload
        if (b.length >= 10) b.writeUInt16BE(pick(INTERESTING_U16), 8 + int(b.length - 9));
        break;
      case 9: { // an IB2 frame type changed
        const fr = ib2FrameOffsets(b);
        if (fr.length > 0) b[pick(fr).at + 3] = r() < 0.8 ? 1 + int(8) : int(256);
        break;
      }
      case 10: { // drop, repeat or swap whole frames
        const fr = ib2FrameOffsets(b);
        if (fr.length === 0) break;
        const f = pick(fr);
        const g = pick(fr);
        const frame = (x: { at: number; end: number }): Buffer => b.subarray(x.at, x.end);
        const op = int(3);
        if (op === 0) b = Buffer.concat([b.subarray(0, f.at), b.subarray(f.end)]);
        else if (op === 1) b = Buffer.concat([b.subarray(0, f.end), frame(f), b.subarray(f.end)]);
        else if (f.at < g.at) b = Buffer.concat([b.subarray(0, f.at), frame(g), b.subarray(f.end, g.at), frame(f), b.subarray(g.end)]);
        break;
      }
      case 11: case 12: { // splice in a valid frame from the corpus: at a frame boundary, anywhere, or as a new tail
        if (!o.corpus || o.corpus.length === 0) break;
        const c = pick(o.corpus);
        const fr = ib2FrameOffsets(b);
        const where = fr.length > 0 && r() < 0.6 ? pick([...fr.map((x) => x.at), b.length]) : at;
        if (r() < 0.25) b = Buffer.concat([b.subarray(0, where), c.subarray(int(c.length + 1))]);
        else b = Buffer.concat([b.subarray(0, where), c, b.subarray(where)]);
        break;
      }
      case 13: { // a dictionary token, anywhere or right after a delimiter of the text (/, space, :, comma, newline)
        if (!o.dictionary || o.dictionary.length === 0) {
          if (b.length > 0) b[int(b.length)] = int(256);
          break;
        }
        let where = at;
        if (r() < 0.5) {
          const delims: number[] = [];
          for (let i = 0; i < b.length && delims.length < 256; i++) if (DELIMS.has(b[i]!)) delims.push(i + 1);
          if (delims.length > 0) where = pick(delims);
        }
        b = Buffer.concat([b.subarray(0, where), pick(o.dictionary), b.subarray(where)]);
        break;
      }
    }
    if (b.length > maxBytes) b = b.subarray(0, maxBytes);
  }
  return b;
}

/** Cuts `b` into random chunks of 1..maxChunk bytes (as a socket might deliver it). */
export function chunks(r: Rng, b: Buffer, maxChunk = 64): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < b.length) {
    const n = 1 + Math.floor(r() * Math.min(maxChunk, b.length - at));
    out.push(b.subarray(at, at + n));
    at += n;
  }
  return out;
}
