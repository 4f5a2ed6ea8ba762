/**
 * The byte formats of the local config replica (`<home>/run/ibma/`): snapshot files and the index.
 * docs/agent.md describes them byte for byte; this file is the one place that writes and checks them.
 *
 * A snapshot file is one header line followed by a UTF-8 JSON body:
 * `IBPSNAP 1 <version> <bodyBytes> <sha256 of body, hex>\n{...json...}`.
 * The index is one line: `IBPINDEX 1 <version> <fnv1a32 of the text before it, 8 hex>\n`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AppConfig } from '../core/cluster-model.js';
import { IbpError } from '../core/errors.js';
import { fnv1a32 } from './hash.js';

/** The format number written in every snapshot and index; a reader rejects any other. */
export const REPLICA_FORMAT = 1;
export const SNAPSHOT_MAGIC = 'IBPSNAP';
export const INDEX_MAGIC = 'IBPINDEX';
/** The name of the index file inside the replica directory. */
export const INDEX_FILE = 'index';
/** Matches a snapshot file name; group 1 is the version. */
export const SNAPSHOT_FILE_RE = /^snapshot-([1-9][0-9]{0,14})\.json$/;
const HEADER_MAX_BYTES = 128;

/** The file name of snapshot `version`. */
export function snapshotFileName(version: number): string {
  return `snapshot-${version}.json`;
}

/** One host of a node in the replica. `port` is the absolute port; a client-only host has `clientOnly`. */
export interface SnapshotHost {
  ip: string;
  port: number;
  clientOnly: boolean;
  invalid: boolean;
}

/** One node as this node sees it. */
export interface SnapshotNode {
  name: string;
  invalid: boolean;
  hosts: SnapshotHost[];
  /** The node's current communication key (`key_exp`), '' when none. */
  keyExp: string;
  /**
   * The key being replaced during a rotation, accepted until `oldKeyDisableAt` ('' or absent when none;
   * always a string in a loaded snapshot). Not in the original's API, which keeps the old key internally.
   */
  oldKeyExp?: string;
  /** Epoch seconds from which initiators use `keyExp` (0 = no rotation pending). */
  newKeyEnableAt: number;
  /** Epoch seconds after which `oldKeyExp` is no longer accepted (0 = none). */
  oldKeyDisableAt: number;
  /** App-defined key/value config (derivation fills it for this node only). */
  kv: Record<string, string>;
}

/** The registry (ibms) address. */
export interface IbmsServerAddress {
  ip: string;
  port: number;
}

/** What a writer supplies for one snapshot; the writer adds the version (and the time when absent). */
export interface SnapshotData {
  /** Creation time, epoch milliseconds; defaults to now. */
  createdAtMs?: number;
  thisNode: string;
  ibmsServer: IbmsServerAddress;
  /** `ibac.retry_connect_timeval`: a host that failed to connect is skipped this long (seconds). */
  retryConnectTimevalSec: number;
  /** `ibac.connecting_timeout`: TCP connect timeout of the client library (seconds). */
  connectingTimeoutSec: number;
  /** `ibma.comm.min_compress_size`: bodies of at least this many bytes are compressed. */
  minCompressSize: number;
  nodes: SnapshotNode[];
  apps: AppConfig[];
  /** The apps this node serves as a server node. */
  servedApps: string[];
}

/** A snapshot as stored: the data plus its format, version and creation time. */
export interface SnapshotRecord extends Omit<SnapshotData, 'createdAtMs'> {
  format: typeof REPLICA_FORMAT;
  version: number;
  createdAtMs: number;
}

const count = z.number().int().nonnegative();
// Not z.record: that rebuilds the object by assignment, which drops a key named "__proto__".
const kvSchema = z.custom<Record<string, string>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'),
  { message: 'an object of strings' },
);
const hostSchema = z.object({
  ip: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  clientOnly: z.boolean(),
  invalid: z.boolean(),
});
const nodeSchema = z.object({
  name: z.string().min(1),
  invalid: z.boolean(),
  hosts: z.array(hostSchema),
  keyExp: z.string(),
  oldKeyExp: z.string().default(''),
  newKeyEnableAt: count,
  oldKeyDisableAt: count,
  kv: kvSchema,
});
const appSchema = z.object({
  app: z.string().min(1),
  desc: z.string(),
  bin: z.string(),
  timeout: z.number().nonnegative(),
  timeout2: z.number().nonnegative(),
  serverNode: z.string(),
  invalid: z.boolean(),
});
const dataShape = {
  thisNode: z.string().min(1),
  ibmsServer: z.object({ ip: z.string(), port: z.number().int().min(0).max(65535) }),
  retryConnectTimevalSec: z.number().nonnegative(),
  connectingTimeoutSec: z.number().nonnegative(),
  minCompressSize: count,
  nodes: z.array(nodeSchema),
  apps: z.array(appSchema),
  servedApps: z.array(z.string()),
};
const dataSchema = z.object({ createdAtMs: count.optional(), ...dataShape });
const recordSchema = z.object({
  format: z.literal(REPLICA_FORMAT),
  version: z.number().int().positive(),
  createdAtMs: count,
  ...dataShape,
});

/** Checks writer input; throws IBP_ERR_CONFIG_INVALID naming the first bad path. */
export function checkSnapshotData(data: SnapshotData): SnapshotData {
  const r = dataSchema.safeParse(data);
  if (!r.success) throw new IbpError('IBP_ERR_CONFIG_INVALID', `snapshot data: ${describeIssue(r.error)}`);
  checkThisNode(r.data, 'IBP_ERR_CONFIG_INVALID');
  return r.data as SnapshotData;
}

/** The bytes of a snapshot file. */
export function encodeSnapshot(record: SnapshotRecord): Buffer {
  const body = Buffer.from(JSON.stringify(record));
  const sha = createHash('sha256').update(body).digest('hex');
  const header = Buffer.from(`${SNAPSHOT_MAGIC} ${REPLICA_FORMAT} ${record.version} ${body.length} ${sha}\n`);
  return Buffer.concat([header, body]);
}

/**
 * Parses and checks a snapshot file; throws IBP_ERR_REPLICA_CORRUPT when it is torn, fails its checksum,
 * has another format, or (when given) is not version `expectedVersion`.
 */
export function decodeSnapshot(buf: Buffer, expectedVersion?: number, source = 'snapshot'): SnapshotRecord {
  const corrupt = (what: string): IbpError => new IbpError('IBP_ERR_REPLICA_CORRUPT', `${source}: ${what}`);
  const nl = buf.subarray(0, HEADER_MAX_BYTES).indexOf(0x0a);
  if (nl < 0) throw corrupt('no header line');
  const parts = buf.subarray(0, nl).toString('latin1').split(' ');
  if (parts.length !== 5 || parts[0] !== SNAPSHOT_MAGIC) throw corrupt('not a snapshot file (bad magic)');
  if (parts[1] !== String(REPLICA_FORMAT)) throw corrupt(`format ${parts[1]} is not ${REPLICA_FORMAT}`);
  const version = parseDecimal(parts[2] as string);
  const length = parseDecimal(parts[3] as string);
  const sha = parts[4] as string;
  if (version === undefined || version < 1 || length === undefined || !/^[0-9a-f]{64}$/.test(sha)) {
    throw corrupt('malformed header line');
  }
  if (expectedVersion !== undefined && version !== expectedVersion) {
    throw corrupt(`holds version ${version}, expected ${expectedVersion}`);
  }
  const body = buf.subarray(nl + 1);
  if (body.length !== length) throw corrupt(`body is ${body.length} bytes, header says ${length} (torn write?)`);
  if (createHash('sha256').update(body).digest('hex') !== sha) throw corrupt('checksum mismatch');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `${source}: body is not JSON`, { cause: err });
  }
  const r = recordSchema.safeParse(json);
  if (!r.success) throw corrupt(describeIssue(r.error));
  if (r.data.version !== version) throw corrupt(`body version ${r.data.version} differs from header ${version}`);
  checkThisNode(r.data, 'IBP_ERR_REPLICA_CORRUPT');
  return r.data as SnapshotRecord;
}

/** The text of the index file naming `version`. */
export function encodeIndex(version: number): string {
  const text = `${INDEX_MAGIC} ${REPLICA_FORMAT} ${version}`;
  return `${text} ${hex8(fnv1a32(Buffer.from(text, 'latin1')))}\n`;
}

/** The version an index names; throws IBP_ERR_REPLICA_CORRUPT when the index is malformed. */
export function decodeIndex(buf: Buffer, source = 'index'): number {
  const line = buf.toString('latin1');
  const m = /^(IBPINDEX ([0-9]+) ([0-9]+)) ([0-9a-f]{8})\n$/.exec(line);
  if (!m) throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `${source}: not an index line`);
  if (m[2] !== String(REPLICA_FORMAT)) {
    throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `${source}: format ${m[2]} is not ${REPLICA_FORMAT}`);
  }
  if (hex8(fnv1a32(Buffer.from(m[1] as string, 'latin1'))) !== m[4]) {
    throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `${source}: checksum mismatch`);
  }
  const version = parseDecimal(m[3] as string);
  if (version === undefined || version < 1) throw new IbpError('IBP_ERR_REPLICA_CORRUPT', `${source}: bad version`);
  return version;
}

function checkThisNode(data: { thisNode: string; nodes: { name: string }[] }, code: 'IBP_ERR_CONFIG_INVALID' | 'IBP_ERR_REPLICA_CORRUPT'): void {
  if (!data.nodes.some((n) => n.name === data.thisNode)) {
    throw new IbpError(code, `snapshot: thisNode '${data.thisNode}' is not among its nodes`);
  }
}

function parseDecimal(s: string): number | undefined {
  if (!/^[0-9]{1,15}$/.test(s)) return undefined;
  return Number(s);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function describeIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  return `${path}: ${issue.message}`;
}
