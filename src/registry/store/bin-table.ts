/**
 * Reading a `.bin` image's body (format: bin-image.ts) without decoding it up front: opening one looks at
 * its fixed header and table sizes only, and views the tables in place as typed arrays. The body's CRC and
 * the tables' order are checked on first access; a record is decoded when it is first asked for (strings
 * are decoded one by one then, or all at once by `records()`), and kept.
 *
 * @example
 * const t = BinTable.open('apps', body, header.crc, path);   // cheap: no record decoded yet
 * t.name(7);                                                  // 'app_000007' (checks the CRC once)
 * t.get(7).timeout;                                           // decodes record 7 only
 * t.records();                                                // every record, in file order
 */
import { IbpError } from '../../core/errors.js';
import { binBodyIntact, binLayout, FIXED, type BinLayout, type KindRecord } from './bin-image.js';
import type { ClusterKind } from './types.js';

const ENCODINGS = ['latin1', 'utf8', 'utf16le'] as const;

/** The records of one image, decoded lazily. */
export class BinTable<K extends ClusterKind> {
  readonly kind: K;
  /** How many records the image holds. */
  readonly count: number;
  readonly #source: string;
  readonly #body: Buffer;
  readonly #L: BinLayout;
  readonly #crc: string | undefined;
  readonly #rec: Uint32Array;
  readonly #S: Uint32Array;
  readonly #R: Uint32Array;
  readonly #N: Float64Array;
  #checked = false;
  #strings: (string | undefined)[] | undefined;
  #cache: (KindRecord<K> | undefined)[] | undefined;
  #all: KindRecord<K>[] | undefined;

  private constructor(kind: K, body: Buffer, L: BinLayout, crc: string | undefined, source: string) {
    this.kind = kind;
    this.count = L.count;
    this.#source = source;
    this.#body = body;
    this.#L = L;
    this.#crc = crc;
    this.#rec = new Uint32Array(body.buffer, body.byteOffset + L.recAt, L.count + 1);
    this.#S = new Uint32Array(body.buffer, body.byteOffset + L.strAt, L.strings + 1);
    this.#R = new Uint32Array(body.buffer, body.byteOffset + L.refsAt, L.refs);
    this.#N = new Float64Array(body.buffer, body.byteOffset + L.numsAt, L.nums);
  }

  /**
   * Opens a body: checks that its table sizes add up to its length (nothing is decoded). `crc` (8 hex, from
   * the header) is checked on first access. `source` names the image in errors.
   * @throws IbpError IBP_ERR_REGISTRY_BIN_IMAGE when the sizes do not add up.
   */
  static open<K extends ClusterKind>(kind: K, body: Buffer, crc: string | undefined, source: string): BinTable<K> {
    const bad = (why: string): IbpError => binImageError(source, kind, why);
    if (body.length < FIXED) throw bad('body too short');
    const f = [0, 1, 2, 3, 4, 5].map((i) => body.readUInt32LE(i * 4)) as [number, number, number, number, number, number];
    const L = binLayout(...f);
    if (L.end !== body.length) throw bad('section sizes do not add up');
    if (L.encoding > 2) throw bad(`unknown text encoding ${L.encoding}`);
    if (L.nums !== (kind === 'apps' ? 2 * L.count : 0)) throw bad('wrong number of numbers');
    // typed arrays need aligned offsets: a body read from a file is; a sliced one may not be
    const aligned = body.byteOffset % 8 === 0 ? body : Buffer.from(new Uint8Array(body));
    return new BinTable(kind, aligned, L, crc, source);
  }

  /** Checks the CRC and the tables now (else done on first access). @throws IbpError IBP_ERR_REGISTRY_BIN_IMAGE */
  verify(): void {
    if (this.#checked) return;
    if (this.#crc !== undefined && !binBodyIntact({ crc: this.#crc }, this.#body)) throw this.#corrupt('checksum mismatch');
    const { count, refs, strings, textBytes, encoding } = this.#L;
    if (!ascending(this.#rec, refs)) throw this.#corrupt('record table out of order');
    if (!ascending(this.#S, textBytes)) throw this.#corrupt('string table out of order');
    if (encoding === 2) for (let j = 0; j <= strings; j++) if (this.#S[j]! % 2 !== 0) throw this.#corrupt('odd UTF-16 offset');
    if (count > 0 && this.#rec[0] !== 0) throw this.#corrupt('record table does not start at 0');
    this.#checked = true;
  }

  /** The name (node, app code, project) of record `i`, decoding nothing else. */
  name(i: number): string {
    this.verify();
    this.#index(i);
    return this.#str(this.#R[this.#rec[i]!]!);
  }

  /** Record `i` (decoded on first access, then the same object). */
  get(i: number): KindRecord<K> {
    this.verify();
    this.#index(i);
    const cache = (this.#cache ??= new Array<KindRecord<K> | undefined>(this.count));
    return (cache[i] ??= this.#decode(i));
  }

  /** Every record in file order (one array, made on first call). */
  records(): KindRecord<K>[] {
    if (this.#all) return this.#all;
    this.verify();
    this.#decodeAllStrings();
    const out = this.#decodeAll();
    const cache = this.#cache;
    if (cache) for (let i = 0; i < this.count; i++) out[i] = cache[i] ?? out[i]!; // keep records handed out already
    this.#cache = undefined;
    return (this.#all = out);
  }

  /** Every record, in one sequential pass over the record stream (the strings are all decoded). */
  #decodeAll(): KindRecord<K>[] {
    const R = this.#R, N = this.#N, rec = this.#rec, count = this.count;
    const T = this.#strings as string[];
    let r = 0;
    let i = 0;
    const str = (): string => {
      const s = T[R[r++]!];
      if (s === undefined) throw this.#corrupt(`record ${i}: string index out of range`);
      return s;
    };
    const n = (): number => {
      const k = R[r++]!;
      if (k > rec[i + 1]! - r) throw this.#corrupt(`record ${i}: a count past its end`);
      return k;
    };
    const out = new Array<KindRecord<K>>(count);
    for (; i < count; i++) {
      if (r !== rec[i]) throw this.#corrupt(`record ${i - 1} does not end where the record table says`);
      if (this.kind === 'apps') {
        const app = str(), desc = str(), bin = str(), serverNode = str();
        out[i] = { app, desc, bin, timeout: N[2 * i]!, timeout2: N[2 * i + 1]!, serverNode, invalid: R[r++] === 1 } as KindRecord<K>;
      } else if (this.kind === 'nodes') {
        const node = str();
        const invalid = R[r++] === 1;
        const keyExp = str();
        const hosts = new Array(n());
        for (let j = 0; j < hosts.length; j++) {
          const ip = str();
          const port = R[r++]!;
          const flags = R[r++]!;
          hosts[j] = { ip, port, clientOnly: (flags & 1) !== 0, invalid: (flags & 2) !== 0 };
        }
        const kv: Record<string, string> = {};
        for (let j = n(); j > 0; j--) {
          const k = str();
          // assignment would set the prototype for a key named "__proto__"
          if (k === '__proto__') Object.defineProperty(kv, k, { value: str(), enumerable: true, writable: true, configurable: true });
          else kv[k] = str();
        }
        out[i] = { node, invalid, hosts, keyExp, kv } as KindRecord<K>;
      } else {
        const project = str();
        const lists: string[][] = [];
        for (let l = 0; l < 3; l++) {
          const a = new Array<string>(n());
          for (let j = 0; j < a.length; j++) a[j] = str();
          lists.push(a);
        }
        out[i] = { project, serverNodes: lists[0]!, clientNodes: lists[1]!, apps: lists[2]! } as KindRecord<K>;
      }
    }
    if (r !== rec[count]) throw this.#corrupt(`record ${count - 1} does not end where the record table says`);
    return out;
  }

  #index(i: number): void {
    if (!(i >= 0 && i < this.count && Number.isInteger(i))) throw new RangeError(`record ${i} of ${this.count}`);
  }

  #corrupt(why: string): IbpError {
    return binImageError(this.#source, this.kind, `${why} (corrupt image)`);
  }

  #str(j: number): string {
    const T = (this.#strings ??= new Array<string | undefined>(this.#L.strings));
    let s = T[j];
    if (s === undefined) {
      if (!(j < this.#L.strings)) throw this.#corrupt(`string index ${j} out of range`);
      const at = this.#L.textAt;
      s = T[j] = this.#body.toString(ENCODINGS[this.#L.encoding]!, at + this.#S[j]!, at + this.#S[j + 1]!);
    }
    return s;
  }

  /** All strings at once: one decode of the whole text, then slices (UTF-8: one decode per string). */
  #decodeAllStrings(): void {
    const { strings, encoding, textAt, textBytes } = this.#L;
    const T = (this.#strings ??= new Array<string | undefined>(strings));
    const S = this.#S;
    if (encoding === 1) {
      for (let j = 0; j < strings; j++) if (T[j] === undefined) this.#str(j);
      return;
    }
    const text = this.#body.toString(ENCODINGS[encoding]!, textAt, textAt + textBytes);
    const unit = encoding === 2 ? 2 : 1;
    for (let j = 0; j < strings; j++) T[j] ??= text.slice(S[j]! / unit, S[j + 1]! / unit);
  }

  #decode(i: number): KindRecord<K> {
    const R = this.#R;
    let r = this.#rec[i]!;
    const end = this.#rec[i + 1]!;
    const count = (): number => {
      const n = R[r++]!;
      if (n > end - r) throw this.#corrupt(`record ${i}: a count past its end`);
      return n;
    };
    let out: unknown;
    if (this.kind === 'apps') {
      const app = this.#str(R[r++]!), desc = this.#str(R[r++]!), bin = this.#str(R[r++]!), serverNode = this.#str(R[r++]!);
      out = { app, desc, bin, timeout: this.#N[2 * i]!, timeout2: this.#N[2 * i + 1]!, serverNode, invalid: R[r++] === 1 };
    } else if (this.kind === 'nodes') {
      const node = this.#str(R[r++]!);
      const invalid = R[r++] === 1;
      const keyExp = this.#str(R[r++]!);
      const hosts = new Array(count());
      for (let j = 0; j < hosts.length; j++) {
        const ip = this.#str(R[r++]!);
        const port = R[r++]!;
        const flags = R[r++]!;
        hosts[j] = { ip, port, clientOnly: (flags & 1) !== 0, invalid: (flags & 2) !== 0 };
      }
      const kv: Record<string, string> = {};
      for (let j = count(); j > 0; j--) {
        const k = this.#str(R[r++]!);
        // assignment would set the prototype for a key named "__proto__"
        if (k === '__proto__') Object.defineProperty(kv, k, { value: this.#str(R[r++]!), enumerable: true, writable: true, configurable: true });
        else kv[k] = this.#str(R[r++]!);
      }
      out = { node, invalid, hosts, keyExp, kv };
    } else {
      const list = (): string[] => {
        const a = new Array<string>(count());
        for (let j = 0; j < a.length; j++) a[j] = this.#str(R[r++]!);
        return a;
      };
      const project = this.#str(R[r++]!);
      const serverNodes = list(), clientNodes = list(), apps = list();
      out = { project, serverNodes, clientNodes, apps };
    }
    if (r !== end) throw this.#corrupt(`record ${i} does not end where the record table says`);
    return out as KindRecord<K>;
  }
}

/** The coded error of an unusable image. */
export function binImageError(source: string, kind: ClusterKind, why: string): IbpError {
  return new IbpError('IBP_ERR_REGISTRY_BIN_IMAGE', `${source}: ${why}; the ${kind} .conf is loaded instead (ibms rebuilds the image at start, or run ibms -a build_config)`, {
    details: { file: source, kind },
  });
}

/** Decodes a whole body (no CRC check: the body alone carries none). @throws IbpError IBP_ERR_REGISTRY_BIN_IMAGE */
export function decodeBinBody<K extends ClusterKind>(kind: K, body: Buffer): KindRecord<K>[] {
  return BinTable.open(kind, body, undefined, '(image body)').records();
}

/** True when `a` never decreases and ends at `last`. */
function ascending(a: Uint32Array, last: number): boolean {
  for (let i = 1; i < a.length; i++) if (a[i]! < a[i - 1]!) return false;
  return a[a.length - 1] === last;
}
