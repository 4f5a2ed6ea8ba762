/**
 * The `.bin` images of the cluster files (`ibms -a build_config`): the parsed records of one `.conf`, in a
 * form that loads about as fast as the bytes can be read (no parsing, no schema, one string decode).
 *
 * File = one ASCII header line, then the body:
 *
 *   IBPBIN 1 <kind> <sha256 of the .conf bytes> <set id> <size> <dev> <ino> <mtimeNs> <ctimeNs> <body bytes> <crc32 of body, 8 hex>\n
 *
 * `set id` is the sha256 (hex) of the three `.conf` hashes joined by spaces when the three images were built
 * together from a cluster that passed the cross-file check, else `-`. size…ctimeNs are the `.conf`'s stat
 * at build time (decimal; `-` when unknown), used to recognise an unchanged `.conf` without reading it.
 *
 * Body (little-endian): u32 count, u32 strings, u32 refs, u32 nums, u32 textBytes, u32 encoding
 * (0 latin1, 1 utf8, 2 utf16le); u32[strings] string lengths in UTF-16 units; u32[refs] the record stream;
 * f64[nums] the numbers; then the text of all distinct strings concatenated. The record stream holds, per
 * record, string-table indexes and small integers in a fixed order per kind (see `writeRecord`).
 */
import { crc32 } from 'node:zlib';
import type { AppConfig, NodeConfig, ProjectConfig } from '../../core/cluster-model.js';
import type { ClusterKind } from './types.js';

export type KindRecord<K extends ClusterKind> = K extends 'nodes' ? NodeConfig : K extends 'apps' ? AppConfig : ProjectConfig;

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

const MAGIC = 'IBPBIN';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const FIXED = 24;

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
    w.str(a.app); w.str(a.desc); w.str(a.bin); w.f64(a.timeout); w.f64(a.timeout2); w.str(a.serverNode); w.u32(a.invalid ? 1 : 0);
  } else {
    const p = r as ProjectConfig;
    w.str(p.project);
    for (const list of [p.serverNodes, p.clientNodes, p.apps]) { w.u32(list.length); for (const s of list) w.str(s); }
  }
}

/** The body bytes of an image of `records`. */
export function encodeBinBody<K extends ClusterKind>(kind: K, records: readonly KindRecord<K>[]): Buffer {
  const w = new Writer();
  for (const r of records) writeRecord(w, kind, r);
  const text = w.strings.join('');
  const utf8 = Buffer.from(text, 'utf8');
  // a lone surrogate does not survive UTF-8: such text is stored as UTF-16
  const encoding = utf8.length === text.length ? 0 : LONE_SURROGATE.test(text) ? 2 : 1;
  const textBuf = encoding === 0 ? utf8 : encoding === 1 ? utf8 : Buffer.from(text, 'utf16le');
  const head = Buffer.alloc(FIXED);
  [records.length, w.strings.length, w.refs.length, w.nums.length, textBuf.length, encoding].forEach((v, i) => head.writeUInt32LE(v, i * 4));
  const lens = new Uint32Array(w.strings.map((s) => s.length));
  return Buffer.concat([
    head,
    Buffer.from(lens.buffer),
    Buffer.from(new Uint32Array(w.refs).buffer),
    Buffer.from(new Float64Array(w.nums).buffer),
    textBuf,
  ]);
}

/** The header line of an image. */
export function encodeBinHeader(h: Omit<BinHeader, 'bodyBytes' | 'crc'>, body: Buffer): string {
  return `${MAGIC} 1 ${h.kind} ${h.confSha256} ${h.setId} ${h.confStat ?? '- - - - -'} ${body.length} ${hex8(crc32(body))}\n`;
}

/** Splits an image into header and body; undefined plus a reason when it is not a valid image of `kind`. */
export function parseBinFile(buf: Buffer, kind: ClusterKind): { header: BinHeader; body: Buffer } | string {
  const nl = buf.subarray(0, 512).indexOf(0x0a);
  if (nl < 0) return 'no header line';
  const f = buf.subarray(0, nl).toString('latin1').split(' ');
  if (f.length !== 12 || f[0] !== MAGIC) return 'not a .bin image';
  if (f[1] !== '1') return `format ${f[1]} is not 1`;
  if (f[2] !== kind) return `an image of ${f[2]}, not ${kind}`;
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
export function binBodyIntact(h: BinHeader, body: Buffer): boolean {
  return hex8(crc32(body)) === h.crc;
}

/** Decodes a body into records; throws a plain Error when the body is inconsistent. */
export function decodeBinBody<K extends ClusterKind>(kind: K, body: Buffer): KindRecord<K>[] {
  if (body.length < FIXED) throw new Error('body too short');
  const [count, nStrings, nRefs, nNums, textBytes, encoding] = [0, 1, 2, 3, 4, 5].map((i) => body.readUInt32LE(i * 4)) as number[];
  const numsAt = FIXED + 4 * (nStrings! + nRefs!);
  const textAt = numsAt + 8 * nNums!;
  if (textAt + textBytes! !== body.length) throw new Error('section sizes do not add up');
  // copies: the sections need not be aligned in the file buffer
  const lens = new Uint32Array(body.buffer.slice(body.byteOffset + FIXED, body.byteOffset + FIXED + 4 * nStrings!));
  const R = new Uint32Array(body.buffer.slice(body.byteOffset + FIXED + 4 * nStrings!, body.byteOffset + numsAt));
  const N = new Float64Array(body.buffer.slice(body.byteOffset + numsAt, body.byteOffset + textAt));
  const text = body.toString(encoding === 0 ? 'latin1' : encoding === 1 ? 'utf8' : 'utf16le', textAt, textAt + textBytes!);
  const T = new Array<string>(nStrings!);
  let p = 0;
  for (let i = 0; i < nStrings!; i++) T[i] = text.slice(p, (p += lens[i]!));
  if (p !== text.length) throw new Error('string lengths do not match the text');
  let r = 0;
  let n = 0;
  const str = (): string => {
    const s = T[R[r++]!];
    if (s === undefined) throw new Error(`string index out of range at ref ${r - 1}`);
    return s;
  };
  const out = new Array<KindRecord<K>>(count!);
  if (kind === 'apps') {
    for (let i = 0; i < count!; i++) {
      const app = str(), desc = str(), bin = str();
      const timeout = N[n++]!, timeout2 = N[n++]!;
      const serverNode = str();
      out[i] = { app, desc, bin, timeout, timeout2, serverNode, invalid: R[r++] === 1 } as KindRecord<K>;
    }
  } else if (kind === 'nodes') {
    for (let i = 0; i < count!; i++) {
      const node = str();
      const invalid = R[r++] === 1;
      const keyExp = str();
      const hosts = new Array(R[r++]!);
      for (let j = 0; j < hosts.length; j++) {
        const ip = str();
        const port = R[r++]!;
        const flags = R[r++]!;
        hosts[j] = { ip, port, clientOnly: (flags & 1) !== 0, invalid: (flags & 2) !== 0 };
      }
      const kv: Record<string, string> = {};
      for (let j = R[r++]!; j > 0; j--) {
        const k = str();
        // assignment would set the prototype for a key named "__proto__"
        if (k === '__proto__') Object.defineProperty(kv, k, { value: str(), enumerable: true, writable: true, configurable: true });
        else kv[k] = str();
      }
      out[i] = { node, invalid, hosts, keyExp, kv } as KindRecord<K>;
    }
  } else {
    const list = (): string[] => {
      const a = new Array<string>(R[r++]!);
      for (let j = 0; j < a.length; j++) a[j] = str();
      return a;
    };
    for (let i = 0; i < count!; i++) {
      const project = str();
      const serverNodes = list(), clientNodes = list(), apps = list();
      out[i] = { project, serverNodes, clientNodes, apps } as KindRecord<K>;
    }
  }
  if (r !== nRefs || n !== nNums) throw new Error('record stream length mismatch');
  return out;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
