/**
 * Reading config files: lenient parse → schema → (cluster: cross-reference check) → deep freeze.
 * Every failure is a coded IbpError whose message points at `file:line:col`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import type { AppConfig, ClusterConfig, NodeConfig, ProjectConfig } from '../cluster-model.js';
import { IbpError } from '../errors.js';
import { appsConfSchema, nodesConfSchema, projectsConfSchema } from './cluster-schemas.js';
import { parseLenientDocument, type LenientDocument } from './lenient-json.js';
import { issuesToProblems, locatedProblem, problemsToError } from './problems.js';
import { ibasConfSchema, ibmaConfSchema, ibmsConfSchema } from './schemas.js';
import { findClusterProblems, type ClusterFileKind } from './validate-cluster.js';

/** A value and everything in it, read-only (validated configs are deep-frozen). */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** A validated, frozen `ibas.conf`: `cfg.ibas.server.port`, `cfg.ibas.mpm.max_count`, `cfg.ibma.config_filename`. */
export type IbasConfig = DeepReadonly<z.output<typeof ibasConfSchema>>;
/** A validated, frozen `ibma.conf`: `cfg.ibma.this_node`, `cfg.ibma.comm.min_compress_size`, `cfg.ibac.connecting_timeout`. */
export type IbmaConfig = DeepReadonly<z.output<typeof ibmaConfSchema>>;
/** A validated, frozen `ibms.conf`: `cfg.ibms.server.ip`, `cfg.ibms.security.old_key_disable_elapse`. */
export type IbmsConfig = DeepReadonly<z.output<typeof ibmsConfSchema>>;

/** Freezes a value and everything reachable from it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Reads a config file as UTF-8 text.
 * @throws IbpError IBP_ERR_CONFIG_READ when it is missing or unreadable.
 */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : code;
    throw new IbpError('IBP_ERR_CONFIG_READ', `cannot read config file ${path}: ${why}`, { cause: err, details: { file: path } });
  }
}

function validate<S extends z.ZodType>(schema: S, doc: LenientDocument): z.output<S> {
  const r = schema.safeParse(doc.value);
  if (!r.success) throw problemsToError(issuesToProblems(r.error.issues, doc));
  return r.data;
}

/** Parses `ibas.conf` text. @throws IbpError IBP_ERR_CONFIG_SYNTAX / _UNKNOWN_KEY / _INVALID. */
export function parseIbasConf(text: string, fileName: string): IbasConfig {
  return deepFreeze(validate(ibasConfSchema, parseLenientDocument(text, fileName)));
}

/** Parses `ibma.conf` text. @throws IbpError IBP_ERR_CONFIG_SYNTAX / _UNKNOWN_KEY / _INVALID. */
export function parseIbmaConf(text: string, fileName: string): IbmaConfig {
  return deepFreeze(validate(ibmaConfSchema, parseLenientDocument(text, fileName)));
}

/** Parses `ibms.conf` text. @throws IbpError IBP_ERR_CONFIG_SYNTAX / _UNKNOWN_KEY / _INVALID. */
export function parseIbmsConf(text: string, fileName: string): IbmsConfig {
  return deepFreeze(validate(ibmsConfSchema, parseLenientDocument(text, fileName)));
}

/** Reads and validates an `ibas.conf`. @example loadIbasConf(join(home.etc, 'ibas.conf')).ibas.server.port */
export function loadIbasConf(path: string): IbasConfig {
  return parseIbasConf(readConfigText(path), path);
}

/** Reads and validates an `ibma.conf`. */
export function loadIbmaConf(path: string): IbmaConfig {
  return parseIbmaConf(readConfigText(path), path);
}

/** Reads and validates an `ibms.conf`. */
export function loadIbmsConf(path: string): IbmsConfig {
  return parseIbmsConf(readConfigText(path), path);
}

/** Parses `ibp_nodes.conf` text (schema only: cross-references are checked by validateClusterConfig). */
export function parseNodesConf(text: string, fileName: string): NodeConfig[] {
  return deepFreeze(validate(nodesConfSchema, parseLenientDocument(text, fileName)).nodes);
}

/** Parses `ibp_apps.conf` text (schema only). */
export function parseAppsConf(text: string, fileName: string): AppConfig[] {
  return deepFreeze(validate(appsConfSchema, parseLenientDocument(text, fileName)).apps);
}

/** Parses `ibp_projects.conf` text (schema only). */
export function parseProjectsConf(text: string, fileName: string): ProjectConfig[] {
  return deepFreeze(validate(projectsConfSchema, parseLenientDocument(text, fileName)).projects);
}

/** The text of one config file and the name its messages use. */
export interface ConfigSource {
  text: string;
  fileName: string;
}

/**
 * Parses the three cluster files and validates them together; problems point at `file:line:col`.
 * The result is deep-frozen: copy it (`structuredClone`) to edit.
 */
export function parseClusterConfig(sources: Record<ClusterFileKind, ConfigSource>): ClusterConfig {
  const docs: Record<ClusterFileKind, LenientDocument> = {
    nodes: parseLenientDocument(sources.nodes.text, sources.nodes.fileName),
    apps: parseLenientDocument(sources.apps.text, sources.apps.fileName),
    projects: parseLenientDocument(sources.projects.text, sources.projects.fileName),
  };
  const config: ClusterConfig = {
    nodes: validate(nodesConfSchema, docs.nodes).nodes,
    apps: validate(appsConfSchema, docs.apps).apps,
    projects: validate(projectsConfSchema, docs.projects).projects,
  };
  const findings = findClusterProblems(config);
  if (findings.length > 0) {
    throw problemsToError(findings.map((f) => locatedProblem(docs[f.file], f.path, f.message)));
  }
  return deepFreeze(config);
}

/** Names of the cluster files inside the etc directory. */
export interface ClusterConfigFiles {
  nodes?: string;
  apps?: string;
  projects?: string;
}

/**
 * Reads `ibp_nodes.conf`, `ibp_apps.conf` and `ibp_projects.conf` (or the names given, relative to
 * `etcDir`), converts them to the cluster model and validates them with validateClusterConfig's rules.
 * @throws IbpError IBP_ERR_CONFIG_READ / _SYNTAX / _UNKNOWN_KEY / _INVALID.
 */
export function loadClusterConfig(etcDir: string, files: ClusterConfigFiles = {}): ClusterConfig {
  const read = (name: string): ConfigSource => {
    const path = resolve(etcDir, name);
    return { text: readConfigText(path), fileName: path };
  };
  return parseClusterConfig({
    nodes: read(files.nodes ?? 'ibp_nodes.conf'),
    apps: read(files.apps ?? 'ibp_apps.conf'),
    projects: read(files.projects ?? 'ibp_projects.conf'),
  });
}
