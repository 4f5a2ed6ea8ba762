/**
 * The store's other files in `run/ibms/`, each written whole with writeFileAtomic and sealed by a header
 * line `<MAGIC> 1 <body bytes> <sha256 of body, hex>\n`:
 *
 * - `checkpoint` (magic IBPCHECKPOINT): JSON of the run state at journal seq `seq` plus the cluster records
 *   changed since the `.conf` files were last saved (as put/del ops);
 * - `views/<segment>.views` (magic IBPVIEWS): the views of one publish: a line with the app and peer-node
 *   records they share, then one line per view `<node> <JSON view pointing into that table>\n`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { IbpError } from '../../core/errors.js';
import type { SnapshotNode } from '../../agent/index.js';
import type { AppConfig } from '../../core/cluster-model.js';
import { checkKeyState, checkOps, type PublishedRef, type RunState, type StoreOp } from './store-ops.js';
import type { PackageInfo, PublishedView } from './types.js';

const CHECKPOINT_MAGIC = 'IBPCHECKPOINT';
const VIEWS_MAGIC = 'IBPVIEWS';
/** A segment file name: `<segment>.views`. */
export const SEGMENT_FILE_RE = /^([a-z]+-[0-9]+)\.views$/;

function seal(magic: string, body: Buffer): Buffer {
  const sha = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([Buffer.from(`${magic} 1 ${body.length} ${sha}\n`), body]);
}

function unseal(buf: Buffer, magic: string, path: string): Buffer {
  const bad = (what: string) => new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${path}: ${what}`, { details: { file: path } });
  const nl = buf.subarray(0, 200).indexOf(0x0a);
  if (nl < 0) throw bad('no header line');
  const m = /^([A-Z]+) ([0-9]+) ([0-9]{1,15}) ([0-9a-f]{64})$/.exec(buf.subarray(0, nl).toString('latin1'));
  if (!m || m[1] !== magic) throw bad(`not a ${magic} file`);
  if (m[2] !== '1') throw bad(`format ${m[2]} is not 1`);
  const body = buf.subarray(nl + 1);
  if (body.length !== Number(m[3])) throw bad(`body is ${body.length} bytes, header says ${m[3]}`);
  if (createHash('sha256').update(body).digest('hex') !== m[4]) throw bad('checksum mismatch');
  return body;
}

/** What a checkpoint holds. */
export interface Checkpoint {
  /** Every journal record up to this seq is reflected here (and in the saved `.conf` files). */
  seq: number;
  run: RunState;
  /** Cluster records changed since the `.conf` files were saved (their values at `seq`). */
  unsaved: StoreOp[];
}

/** Writes the checkpoint atomically. */
export function writeCheckpoint(path: string, cp: Checkpoint): void {
  const body = {
    format: 1,
    seq: cp.seq,
    version: cp.run.version,
    pending: [...cp.run.pending].sort(),
    keys: [...cp.run.keys].map(([node, k]) => ({ node, ...k })),
    published: [...cp.run.published].map(([node, r]) => ({ node, version: r.version, segment: r.segment })),
    unsaved: cp.unsaved,
  };
  try {
    writeFileAtomic(path, seal(CHECKPOINT_MAGIC, Buffer.from(JSON.stringify(body))), { mode: 0o600 });
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `cannot write checkpoint ${path} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
}

/** Reads the checkpoint; undefined when there is none. @throws IbpError IBP_ERR_REGISTRY_JOURNAL when corrupt. */
export function readCheckpoint(path: string): Checkpoint | undefined {
  if (!existsSync(path)) return undefined;
  const body = unseal(readFileSync(path), CHECKPOINT_MAGIC, path);
  const bad = (what: string) => new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${path}: ${what}`, { details: { file: path } });
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${path}: body is not JSON`, { cause: err });
  }
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (j.format !== 1 || !isCount(j.seq) || !isCount(j.version)) throw bad('bad format, seq or version');
  if (!Array.isArray(j.pending) || !j.pending.every((n) => typeof n === 'string')) throw bad('bad pending list');
  if (!Array.isArray(j.keys) || !Array.isArray(j.published)) throw bad('bad keys or published list');
  const keys = new Map<string, ReturnType<typeof checkKeyState>>();
  for (const k of j.keys as Record<string, unknown>[]) {
    if (typeof k?.node !== 'string') throw bad('a key entry has no node');
    keys.set(k.node, checkKeyState({ oldKeyExp: k.oldKeyExp, newKeyEnableAt: k.newKeyEnableAt, oldKeyDisableAt: k.oldKeyDisableAt }, `${path} keys`));
  }
  const published = new Map<string, PublishedRef>();
  for (const p of j.published as Record<string, unknown>[]) {
    if (typeof p?.node !== 'string' || !isCount(p.version) || typeof p.segment !== 'string' || !/^[a-z]+-[0-9]+$/.test(p.segment)) {
      throw bad('bad published entry');
    }
    published.set(p.node, { version: p.version, segment: p.segment });
  }
  return {
    seq: j.seq,
    run: { keys, pending: new Set(j.pending as string[]), published, version: j.version },
    unsaved: checkOps(j.unsaved, `${path} unsaved`),
  };
}

/** The JSON of an app record's segment row, by record object. */
const appRowJson = new WeakMap<AppConfig, string>();

/**
 * Writes one view segment: a first line with the app and peer-node records the views share (each once),
 * then one line per view that points into them. Returns the number of characters written.
 */
export function writeSegment(dir: string, segment: string, views: readonly PublishedView[]): number {
  const apps: AppConfig[] = [];
  const appIdx = new Map<AppConfig, number>();
  const peers: SnapshotNode[] = [];
  const peerIdx = new Map<SnapshotNode, number>();
  const index = <T>(list: T[], m: Map<T, number>, x: T): number => {
    let i = m.get(x);
    if (i === undefined) {
      m.set(x, (i = list.length));
      list.push(x);
    }
    return i;
  };
  const lines = views.map((v) => {
    const ref: ViewLine = {
      node: v.node,
      version: v.version,
      self: v.nodes[0] as SnapshotNode,
      peers: v.nodes.slice(1).map((n) => index(peers, peerIdx, n)),
      apps: v.apps.map((a) => index(apps, appIdx, a)),
      servedApps: v.servedApps,
      kv: v.kv,
      packages: v.packages,
    };
    return `${v.node} ${JSON.stringify(ref)}\n`;
  });
  // apps as tuples: a third smaller than objects, and as much faster to write and read back; each record's
  // row is made once (records are replaced whole, never edited) and reused by every segment listing it
  const appRows = apps.map((a) => {
    let row = appRowJson.get(a);
    if (row === undefined) appRowJson.set(a, (row = JSON.stringify([a.app, a.desc, a.bin, a.timeout, a.timeout2, a.serverNode, a.invalid ? 1 : 0] satisfies AppRow)));
    return row;
  });
  const text = `{"apps":[${appRows.join(',')}],"peers":${JSON.stringify(peers)}}\n${lines.join('')}`;
  const path = join(dir, `${segment}.views`);
  try {
    // ASCII text (the usual segment) copied as Latin-1: the same bytes as UTF-8, several times faster
    const bytes = Buffer.byteLength(text, 'utf8') === text.length ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
    writeFileAtomic(path, seal(VIEWS_MAGIC, bytes), { mode: 0o600 });
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `cannot write view segment ${path} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  return text.length;
}

/** An app in a segment's table: `[app, desc, bin, timeout, timeout2, serverNode, invalid 0/1]`. */
type AppRow = [string, string, string, number, number, string, number];

function appOfRow(r: unknown): AppConfig | undefined {
  if (!Array.isArray(r) || r.length !== 7) return undefined;
  const [app, desc, bin, timeout, timeout2, serverNode, invalid] = r as unknown[];
  if (typeof app !== 'string' || typeof desc !== 'string' || typeof bin !== 'string' || typeof timeout !== 'number'
    || typeof timeout2 !== 'number' || typeof serverNode !== 'string') return undefined;
  return { app, desc, bin, timeout, timeout2, serverNode, invalid: invalid === 1 };
}

/** One view as a segment stores it. */
interface ViewLine {
  node: string;
  version: number;
  self: SnapshotNode;
  peers: number[];
  apps: number[];
  servedApps: string[];
  kv: Record<string, string>;
  packages: PackageInfo[];
}

/**
 * Reads the views of `wanted` nodes (node → version) from one segment. A view is returned only when its
 * version is the one wanted. Views read together share their app and peer records.
 * @throws IbpError IBP_ERR_REGISTRY_JOURNAL when the file is missing or corrupt.
 */
export function readSegment(dir: string, segment: string, wanted: ReadonlyMap<string, number>): { views: Map<string, PublishedView>; chars: number; count: number } {
  const path = join(dir, `${segment}.views`);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `cannot read view segment ${path} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  const text = unseal(buf, VIEWS_MAGIC, path).toString('utf8');
  const bad = (what: string) => new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${path}: ${what}`, { details: { file: path } });
  const first = text.indexOf('\n');
  if (first < 0) throw bad('no record table');
  let raw: { apps: unknown[]; peers: SnapshotNode[] };
  try {
    raw = JSON.parse(text.slice(0, first)) as typeof raw;
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `${path}: record table is not JSON`, { cause: err });
  }
  if (!Array.isArray(raw?.apps) || !Array.isArray(raw?.peers)) throw bad('bad record table');
  const tables = {
    apps: raw.apps.map((r, i) => {
      const a = appOfRow(r);
      if (a === undefined) throw bad(`bad app row ${i} in the record table`);
      return a;
    }),
    peers: raw.peers,
  };
  const views = new Map<string, PublishedView>();
  let count = 0;
  let pos = first + 1;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl;
    const sp = text.indexOf(' ', pos);
    count++;
    if (sp > pos && sp < end) {
      const node = text.slice(pos, sp);
      const version = wanted.get(node);
      if (version !== undefined) {
        const l = JSON.parse(text.slice(sp + 1, end)) as ViewLine;
        if (l.node === node && l.version === version) {
          const pick = <T>(list: T[], i: number): T => {
            const x = list[i];
            if (x === undefined) throw bad(`view of ${node} points past the record table`);
            return x;
          };
          // frozen down to the arrays; the shared records are not (freezing 100,000 of them costs ~100 ms)
          views.set(node, Object.freeze({
            node,
            version,
            nodes: Object.freeze([l.self, ...l.peers.map((i) => pick(tables.peers, i))]),
            apps: Object.freeze(l.apps.map((i) => pick(tables.apps, i))),
            servedApps: Object.freeze(l.servedApps),
            kv: Object.freeze(l.kv),
            packages: Object.freeze(l.packages),
          }) as PublishedView);
        }
      }
    }
    pos = end + 1;
  }
  return { views, chars: text.length, count };
}

/** The segments present in `dir`. */
export function listSegments(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const m = SEGMENT_FILE_RE.exec(f);
    return m ? [m[1] as string] : [];
  });
}

/** Removes a segment file (missing is fine). */
export function removeSegment(dir: string, segment: string): void {
  try { unlinkSync(join(dir, `${segment}.views`)); } catch { /* already gone */ }
}
