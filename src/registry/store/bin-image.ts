/**
 * The `.bin` images of the cluster files (`ibms -a build_config`), format 2: the parsed records of one
 * `.conf` laid out so that opening an image is the read of its bytes plus a look at a few tables — records
 * are decoded on first access (`BinTable`, bin-table.ts), not at load.
 *
 * File = one ASCII header line padded with spaces to a multiple of 8 bytes (so the body's tables can be
 * read in place as typed arrays), then the body:
 *
 *   IBPBIN 2 <kind> <sha256 of the .conf bytes> <set id> <size> <dev> <ino> <mtimeNs> <ctimeNs> <body bytes> <crc32 of body, 8 hex>   …\n
 *
 * Body (little-endian; every table starts at a multiple of 8 bytes from the body's start):
 *   u32 × 8     count, strings, refs, nums, textBytes, encoding (0 ASCII, 1 UTF-8, 2 UTF-16LE), 0, 0
 *   u32[count+1]     record i's first entry in the record stream (the last = refs)
 *   u32[strings+1]   string j's first byte in the text (the last = textBytes)
 *   u32[refs]        the record stream: string indexes and small integers, a fixed order per kind (`writeRecord`)
 *   f64[nums]        the numbers (apps: timeout, timeout2 of record i at 2i, 2i+1; other kinds: none)
 *   text             the distinct strings, concatenated
 */
import { crc32 } from 'node:zlib';
import type { AppConfig, NodeConfig, ProjectConfig } from '../../core/cluster-model.js';
import type { ClusterKind } from './types.js';

export type KindRecord<K extends ClusterKind> = K extends 'nodes' ? NodeConfig : K extends 'apps' ? AppConfig : ProjectConfig;

/** The format version this code writes and the only one it reads. */
export const BIN_FORMAT = 2;

/** What the header of a `.bin` says about its `.conf`. */
export interface BinHeader {
  kind: ClusterKind;
  confSha256: string;
  setId: string;
  /** `<size> <dev> <ino> <mtimeNs> <ctimeNs>` of the `.conf` at build time, or undefined. */
  confStat: string | undefined;
  bodyBytes: number;
  crc: string;
}

/** Where the tables of a body are (byte offsets from the body's start). */
export interface BinLayout {
  count: number;
  strings: number;
  refs: number;
  nums: number;
  textBytes: number;
  encoding: number;
  recAt: number;
  strAt: number;
  refsAt: number;
  numsAt: number;
  textAt: number;
  end: number;
}

const MAGIC = 'IBPBIN';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const FIXED = 32;
const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** The layout of a body with these counts. */
export function binLayout(count: number, strings: number, refs: number, nums: number, textBytes: number, encoding: number): BinLayout {
  const recAt = FIXED;
  const strAt = align8(recAt + 4 * (count + 1));
  const refsAt = align8(strAt + 4 * (strings + 1));
  const numsAt = align8(refsAt + 4 * refs);
  const textAt = numsAt + 8 * nums;
  return { count, strings, refs, nums, textBytes, encoding, recAt, strAt, refsAt, numsAt, textAt, end: textAt + textBytes };
}

class Writer {
  strings: string[] = [];
  #index = new Map<string, number>();
  refs: number[] = [];
  nums: number[] = [];
  str(s: string): void {
    let i = this.#index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.#index.set(s, i);
    }
    this.refs.push(i);
  }
  u32(n: number): void { this.refs.push(n >>> 0); }
  f64(n: number): void { this.nums.push(n); }
}

/** The record stream of one record; the first entry is always its name. BinTable reads it back. */
function writeRecord(w: Writer, kind: ClusterKind, r: NodeConfig | AppConfig | ProjectConfig): void {
  if (kind === 'nodes') {
    const n = r as NodeConfig;
    w.str(n.node); w.u32(n.invalid ? 1 : 0); w.str(n.keyExp);
    w.u32(n.hosts.length);
    for (const h of n.hosts) { w.str(h.ip); w.u32(h.port); w.u32((h.clientOnly ? 1 : 0) | (h.invalid ? 2 : 0)); }
    const kv = Object.entries(n.kv);
    w.u32(kv.length);
    for (const [k, v] of kv) { w.str(k); w.str(v); }
  } else if (kind === 'apps') {
    const a = r as AppConfig;
    w.str(a.app); w.str(a.desc); w.str(a.bin); w.str(a.serverNode); w.u32(a.invalid ? 1 : 0);
    w.f64(a.timeout); w.f64(a.timeout2);
  } else {
    const p = r as ProjectConfig;
    w.str(p.project);
    for (const list of [p.serverNodes, p.clientNodes, p.apps]) { w.u32(list.length); for (const s of list) w.str(s); }
  }
}

/** The body bytes of an image of `records` (an 8-byte aligned buffer). */
export function encodeBinBody<K extends ClusterKind>(kind: K, records: readonly KindRecord<K>[]): Buffer {
  const w = new Writer();
  const recStart: number[] = [];
  for (const r of records) {
    recStart.push(w.refs.length);
    writeRecord(w, kind, r);
  }
  recStart.push(w.refs.length);
  const text = w.strings.join('');
  const utf8 = Buffer.from(text, 'utf8');
  // a lone surrogate does not survive UTF-8: such text is stored as UTF-16
  const encoding = utf8.length === text.length ? 0 : LONE_SURROGATE.test(text) ? 2 : 1;
  const textBuf = encoding === 2 ? Buffer.from(text, 'utf16le') : utf8;
  const L = binLayout(records.length, w.strings.length, w.refs.length, w.nums.length, textBuf.length, encoding);
  const body = Buffer.from(new ArrayBuffer(L.end));
  const u32 = new Uint32Array(body.buffer, 0, L.numsAt / 4);
  u32.set([L.count, L.strings, L.refs, L.nums, L.textBytes, encoding, 0, 0], 0);
  u32.set(recStart, L.recAt / 4);
  let at = 0;
  const strStart = new Uint32Array(w.strings.length + 1);
  w.strings.forEach((s, j) => {
    strStart[j] = at;
    at += encoding === 0 ? s.length : encoding === 2 ? 2 * s.length : Buffer.byteLength(s, 'utf8');
  });
  strStart[w.strings.length] = at;
  u32.set(strStart, L.strAt / 4);
  u32.set(w.refs, L.refsAt / 4);
  new Float64Array(body.buffer, L.numsAt, L.nums).set(w.nums);
  textBuf.copy(body, L.textAt);
  return body;
}

/** The header line of an image, padded to a multiple of 8 bytes. */
export function encodeBinHeader(h: Omit<BinHeader, 'bodyBytes' | 'crc'>, body: Buffer): string {
  const line = `${MAGIC} ${BIN_FORMAT} ${h.kind} ${h.confSha256} ${h.setId} ${h.confStat ?? '- - - - -'} ${body.length} ${hex8(crc32(body))}`;
  return `${line.padEnd(align8(line.length + 1) - 1, ' ')}\n`;
}

/**
 * Splits an image into header and body; a reason (string) when it is not a usable image of `kind`: not an
 * image, another format version, another kind, torn (the body's length differs from the header's).
 */
export function parseBinFile(buf: Buffer, kind: ClusterKind): { header: BinHeader; body: Buffer } | string {
  const nl = buf.subarray(0, 512).indexOf(0x0a);
  if (nl < 0) return 'not a .bin image (no header line)';
  const f = buf.subarray(0, nl).toString('latin1').trimEnd().split(' ');
  if (f[0] !== MAGIC) return 'not a .bin image';
  if (f[1] !== String(BIN_FORMAT)) return `format ${JSON.stringify(f[1]?.slice(0, 16))}, this registry reads format ${BIN_FORMAT} (an image of another version)`;
  if (f.length !== 12) return 'a malformed header line';
  if (f[2] !== kind) return `an image of ${JSON.stringify(f[2]?.slice(0, 16))}, not ${kind}`;
  if ((nl + 1) % 8 !== 0) return 'a malformed header line (not padded)';
  const stat = f.slice(5, 10);
  const header: BinHeader = {
    kind,
    confSha256: f[3] as string,
    setId: f[4] as string,
    confStat: stat.includes('-') ? undefined : stat.join(' '),
    bodyBytes: Number(f[10]),
    crc: f[11] as string,
  };
  const body = buf.subarray(nl + 1);
  if (body.length !== header.bodyBytes) return `body is ${body.length} bytes, header says ${f[10]} (torn?)`;
  return { header, body };
}

/** True when the body's checksum matches the header. */
export function binBodyIntact(h: Pick<BinHeader, 'crc'>, body: Buffer): boolean {
  return hex8(crc32(body)) === h.crc;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
