/**
 * The cluster files on disk: loading the three `etc/ibp_*.conf` (each from its `.bin` image when that
 * image matches the `.conf`), saving them atomically in the original's format, and writing the images.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
import type { ClusterConfig } from '../../core/cluster-model.js';
import {
  findClusterProblems, formatClusterConfig, parseAppsConf, parseClusterConfig, parseNodesConf, parseProjectsConf,
  type IbmsConfig,
} from '../../core/config/index.js';
import { IbpError } from '../../core/errors.js';
import type { IbpHome } from '../../core/home.js';
import { encodeBinBody, encodeBinHeader, parseBinFile, type KindRecord } from './bin-image.js';
import { BinTable, binImageError } from './bin-table.js';
import { CLUSTER_KINDS, type BinCheck, type ClusterKind, type LoadSource, type StoreLogger } from './types.js';

/** Absolute paths of the three `.conf` files (names from ibms.conf `ibms.config.*_conf`). */
export function clusterConfPaths(home: IbpHome, conf: IbmsConfig): Record<ClusterKind, string> {
  const c = conf.ibms.config;
  return { nodes: resolve(home.etc, c.nodes_conf), apps: resolve(home.etc, c.apps_conf), projects: resolve(home.etc, c.projects_conf) };
}

/** The path of a `.conf`'s image. */
export const binPathOf = (confPath: string): string => `${confPath}.bin`;

export const sha256Hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** The id tying three images built together from a checked cluster. */
export const setIdOf = (sha: Record<ClusterKind, string>): string => sha256Hex(`${sha.nodes} ${sha.apps} ${sha.projects}`);

/** Reads a `.conf`'s bytes. @throws IbpError IBP_ERR_CONFIG_READ naming the file. */
export function readConfBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : code;
    throw new IbpError('IBP_ERR_CONFIG_READ', `cannot read config file ${path}: ${why}`, { cause: err, details: { file: path } });
  }
}

/** `<size> <dev> <ino> <mtimeNs> <ctimeNs>` of a file, or undefined when it cannot be stat'ed. */
export function statKey(path: string): string | undefined {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? undefined : `${st.size} ${st.dev} ${st.ino} ${st.mtimeNs} ${st.ctimeNs}`;
}

/** What loading found. */
export interface LoadedCluster {
  /**
   * The cluster. Records from an image are decoded when this is first read (then kept): reading it can
   * throw IBP_ERR_REGISTRY_BIN_IMAGE for an image whose body turns out corrupt (its CRC is checked then).
   */
  readonly cluster: ClusterConfig;
  from: Record<ClusterKind, LoadSource>;
  /** sha256 of each `.conf`'s bytes (the records loaded are exactly that file's). */
  confSha: Record<ClusterKind, string>;
  /** The three files were checked together (always, unless `deferCrossCheck`). */
  crossChecked: boolean;
  /** The images used, records not decoded yet (for access by index without decoding the rest). */
  tables: Partial<{ [K in ClusterKind]: BinTable<K> }>;
  /** Kinds whose image exists but was not used (stale, old format, foreign, torn, corrupt). */
  refused: ClusterKind[];
}

export interface LoadClusterOptions {
  paths: Record<ClusterKind, string>;
  binCheck?: BinCheck;
  logger?: StoreLogger;
  /**
   * Skip the cross-file check (unknown nodes/apps, duplicate hosts) unless the images vouch for it: the
   * store replays its journal first, because a crash while saving may leave the files briefly inconsistent.
   */
  deferCrossCheck?: boolean;
  /** Do not use the images of these kinds (load their `.conf`). */
  skipBins?: readonly ClusterKind[];
}

type Found = { table: BinTable<ClusterKind>; sha: string; setId: string };

/**
 * Parses and checks the three `.conf` files together (no images): problems point at file:line:col.
 * @throws IbpError IBP_ERR_CONFIG_READ / _SYNTAX / _UNKNOWN_KEY / _INVALID.
 */
export function parseClusterConfFiles(paths: Record<ClusterKind, string>, bytes: Partial<Record<ClusterKind, Buffer>> = {}): ClusterConfig {
  const source = (k: ClusterKind) => ({ text: (bytes[k] ?? readConfBytes(paths[k])).toString('utf8'), fileName: paths[k] });
  return parseClusterConfig({ nodes: source('nodes'), apps: source('apps'), projects: source('projects') });
}

/**
 * Loads the cluster: each file from its `.bin` when the image exists, is of this format and kind, whole,
 * and matches the `.conf` (stat or sha256, see BinCheck), else by parsing the `.conf`. Unusable images are
 * logged (IBP_ERR_REGISTRY_BIN_IMAGE) and ignored. An image is opened, not decoded: its records are decoded
 * (and its CRC checked) when `cluster` is first read — see `loadClusterFilesNow` for a load that falls back
 * to the `.conf` of a corrupt body. The three files are checked together unless all three images were built
 * together from a checked cluster (or `deferCrossCheck`).
 * @throws IbpError IBP_ERR_CONFIG_READ / _SYNTAX / _UNKNOWN_KEY / _INVALID naming the file (and line).
 * @example const { cluster, from } = loadClusterFiles({ paths: clusterConfPaths(home, conf) });
 */
export function loadClusterFiles(opts: LoadClusterOptions): LoadedCluster {
  const { paths } = opts;
  const bytes: Partial<Record<ClusterKind, Buffer>> = {};
  const confBytes = (k: ClusterKind): Buffer => (bytes[k] ??= readConfBytes(paths[k]));
  const found: Partial<Record<ClusterKind, Found>> = {};
  const refused: ClusterKind[] = [];
  for (const k of CLUSTER_KINDS) {
    const stat = statKey(paths[k]);
    if (stat === undefined) confBytes(k); // throws the read error naming the file
    const binPath = binPathOf(paths[k]);
    if (!existsSync(binPath)) continue;
    if (opts.skipBins?.includes(k)) {
      refused.push(k);
      continue;
    }
    const r = tryBin(k, binPath, stat, opts.binCheck ?? 'stat', () => confBytes(k));
    if (r instanceof IbpError) {
      refused.push(k);
      opts.logger?.warn({ file: binPath, code: r.code, reason: r.message }, `ignoring ${r.message}`);
    } else found[k] = r;
  }
  const from = Object.fromEntries(CLUSTER_KINDS.map((k) => [k, found[k] ? 'bin' : 'conf'])) as Record<ClusterKind, LoadSource>;
  const confSha = Object.fromEntries(CLUSTER_KINDS.map((k) => [k, found[k]?.sha ?? sha256Hex(confBytes(k))])) as Record<ClusterKind, string>;
  const tables = Object.fromEntries(CLUSTER_KINDS.flatMap((k) => (found[k] ? [[k, found[k].table]] : []))) as LoadedCluster['tables'];
  if (!found.nodes && !found.apps && !found.projects && opts.deferCrossCheck !== true) {
    return { cluster: parseClusterConfFiles(paths, bytes), from, confSha, crossChecked: true, tables, refused };
  }
  const parsed: Partial<ClusterConfig> = {
    nodes: found.nodes ? undefined : parseNodesConf(confBytes('nodes').toString('utf8'), paths.nodes),
    apps: found.apps ? undefined : parseAppsConf(confBytes('apps').toString('utf8'), paths.apps),
    projects: found.projects ? undefined : parseProjectsConf(confBytes('projects').toString('utf8'), paths.projects),
  };
  let decoded: ClusterConfig | undefined;
  const lazy = (crossChecked: boolean): LoadedCluster => ({
    get cluster(): ClusterConfig {
      return (decoded ??= {
        nodes: parsed.nodes ?? (found.nodes!.table as BinTable<'nodes'>).records(),
        apps: parsed.apps ?? (found.apps!.table as BinTable<'apps'>).records(),
        projects: parsed.projects ?? (found.projects!.table as BinTable<'projects'>).records(),
      });
    },
    from, confSha, crossChecked, tables, refused,
  });
  const setId = setIdOf(confSha);
  const checkedTogether = CLUSTER_KINDS.every((k) => found[k]?.setId === setId);
  if (checkedTogether || opts.deferCrossCheck === true) return lazy(checkedTogether);
  const loaded = lazy(true);
  let problems: number;
  try {
    problems = findClusterProblems(loaded.cluster).length;
  } catch (err) {
    const kind = binErrorKind(err);
    if (kind === undefined) throw err;
    opts.logger?.warn({ file: binPathOf(paths[kind]), code: 'IBP_ERR_REGISTRY_BIN_IMAGE', reason: (err as Error).message }, `ignoring ${(err as Error).message}`);
    return loadClusterFiles({ ...opts, skipBins: [...(opts.skipBins ?? []), kind] });
  }
  if (problems === 0) return loaded;
  // the parse of the three .conf files reports the problems at file:line:col
  const cluster = parseClusterConfFiles(paths, bytes);
  return { cluster, from: { nodes: 'conf', apps: 'conf', projects: 'conf' }, confSha, crossChecked: true, tables: {}, refused };
}

/**
 * `loadClusterFiles`, then decodes the cluster at once; an image whose body turns out corrupt is refused
 * (logged with IBP_ERR_REGISTRY_BIN_IMAGE, listed in `refused`) and its `.conf` loaded instead.
 */
export function loadClusterFilesNow(opts: LoadClusterOptions): LoadedCluster {
  for (let skip = [...(opts.skipBins ?? [])]; ; ) {
    const loaded = loadClusterFiles({ ...opts, skipBins: skip });
    try {
      void loaded.cluster;
      return loaded;
    } catch (err) {
      const kind = binErrorKind(err);
      if (kind === undefined || skip.includes(kind)) throw err;
      opts.logger?.warn({ file: binPathOf(opts.paths[kind]), code: 'IBP_ERR_REGISTRY_BIN_IMAGE', reason: (err as Error).message }, `ignoring ${(err as Error).message}`);
      skip = [...skip, kind];
    }
  }
}

/** The kind named by an IBP_ERR_REGISTRY_BIN_IMAGE error, else undefined. */
function binErrorKind(err: unknown): ClusterKind | undefined {
  if (!(err instanceof IbpError) || err.code !== 'IBP_ERR_REGISTRY_BIN_IMAGE') return undefined;
  const kind = err.details?.kind;
  return CLUSTER_KINDS.find((k) => k === kind);
}

function tryBin(kind: ClusterKind, binPath: string, stat: string | undefined, check: BinCheck, confBytes: () => Buffer): Found | IbpError {
  let buf: Buffer;
  try {
    buf = readFileSync(binPath);
  } catch (err) {
    return binImageError(binPath, kind, `cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const parsed = parseBinFile(buf, kind);
  if (typeof parsed === 'string') return binImageError(binPath, kind, parsed);
  const { header, body } = parsed;
  const statMatches = check === 'stat' && header.confStat !== undefined && header.confStat === stat;
  if (!statMatches && sha256Hex(confBytes()) !== header.confSha256) return binImageError(binPath, kind, 'stale: the .conf changed after build_config');
  try {
    return { table: BinTable.open(kind, body, header.crc, binPath), sha: header.confSha256, setId: header.setId };
  } catch (err) {
    if (err instanceof IbpError) return err;
    throw err;
  }
}

/**
 * Writes the image of one `.conf` atomically. `records` must be exactly what that file parses to, and
 * `confSha`/`confStat` describe the bytes they came from.
 */
export function writeBinImage<K extends ClusterKind>(
  kind: K, confPath: string, records: readonly KindRecord<K>[], confSha: string, setId: string, confStat: string | undefined,
): string {
  const body = encodeBinBody(kind, records);
  const header = encodeBinHeader({ kind, confSha256: confSha, setId, confStat }, body);
  const path = binPathOf(confPath);
  try {
    writeFileAtomic(path, Buffer.concat([Buffer.from(header, 'latin1'), body]));
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  return path;
}

/**
 * Writes the three `.conf` files atomically (temp + fsync + rename each), in the original's format.
 * Returns the sha256 of each file's bytes.
 */
export function saveClusterFiles(paths: Record<ClusterKind, string>, cluster: ClusterConfig): Record<ClusterKind, string> {
  const texts = formatClusterConfig(cluster);
  const out = {} as Record<ClusterKind, string>;
  for (const k of CLUSTER_KINDS) {
    const data = Buffer.from(texts[k]);
    try {
      writeFileAtomic(paths[k], data);
    } catch (err) {
      throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `cannot write ${paths[k]} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
    }
    out[k] = sha256Hex(data);
  }
  return out;
}
