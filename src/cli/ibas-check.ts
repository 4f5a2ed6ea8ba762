/**
 * `ibas -a check` (the Tcn tools' "check config syntax", SPEC §8.3): loads `ibas.conf` and the `ibma.conf` it
 * names and reports every problem, each with `file:line:col` where it has one, then checks what the two files mean
 * together with the home: the local config replica is there and is this node's, the listen address is a host of
 * this node, every app the node serves has its package in `so/`, the listen address can be bound (when the
 * platform is not running). Errors make the check fail; warnings do not.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ConfigReplica } from '../agent/index.js';
import { toIbpError } from '../core/errors.js';
import type { IbpHome } from '../core/home.js';
import {
  loadIbasConf, loadIbmaConf, parseLenientDocument, readConfigText, type IbasConfig, type IbmaConfig, type LenientDocument,
} from '../core/config/index.js';
import { resolvePlatformSettings, runningPid } from '../platform/index.js';

/** One thing `ibas -a check` found. */
export interface ConfigCheckProblem {
  severity: 'error' | 'warning';
  /** `file:line:col: ` or `file: ` (empty when the problem has no place). */
  where: string;
  message: string;
}

/** Everything `checkIbasConfig` looked at and found. */
export interface ConfigCheckReport {
  ibasConf: string;
  ibmaConf: string | undefined;
  problems: ConfigCheckProblem[];
}

/** The problems a config load error stands for, located where the loader located them. */
function loadProblems(err: unknown, file: string): ConfigCheckProblem[] {
  const e = toIbpError(err);
  const listed = (e.details as { problems?: { message: string }[] } | undefined)?.problems;
  if (Array.isArray(listed) && listed.length > 0) return listed.map((p) => ({ severity: 'error', where: '', message: p.message }));
  // A syntax or read error: its message already starts with file:line:col (or names the file).
  return [{ severity: 'error', where: e.message.startsWith(file) ? '' : `${file}: `, message: e.message }];
}

/** A located problem inside a parsed document. */
function at(doc: LenientDocument | undefined, file: string, path: (string | number)[]): string {
  if (!doc) return `${file}: `;
  const loc = doc.locate(path);
  const pos = loc.keyPos ?? loc.pos;
  return `${file}:${pos.line}:${pos.col}: `;
}

function lenientDoc(path: string): LenientDocument | undefined {
  try {
    return parseLenientDocument(readConfigText(path), path);
  } catch {
    return undefined;
  }
}

/** Whether `ip:port` can be bound now: undefined when it can, else why not. */
function bindProblem(ip: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? `${ip}:${port} is in use by another process` : `${ip}:${port} cannot be bound: ${err.code ?? err.message}`));
    s.listen({ host: ip, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

/**
 * Checks `ibasPath` and the ibma.conf it names (relative to the home's etc/).
 * @example (await checkIbasConfig(home, join(home.etc, 'ibas.conf'))).problems
 */
export async function checkIbasConfig(home: IbpHome, ibasPath: string): Promise<ConfigCheckReport> {
  const problems: ConfigCheckProblem[] = [];
  let ibas: IbasConfig | undefined;
  try {
    ibas = loadIbasConf(ibasPath);
  } catch (err) {
    problems.push(...loadProblems(err, ibasPath));
  }
  const ibasDoc = lenientDoc(ibasPath);
  // The ibma.conf name: from the loaded config, or read leniently from a file with other problems.
  const named = ibas?.ibma.config_filename ?? ((ibasDoc?.value as { ibma?: { config_filename?: unknown } } | undefined)?.ibma?.config_filename);
  const ibmaName = typeof named === 'string' && named.length > 0 && !named.includes('/') ? named : 'ibma.conf';
  const ibmaPath = join(home.etc, ibmaName);
  let ibma: IbmaConfig | undefined;
  try {
    ibma = loadIbmaConf(ibmaPath);
  } catch (err) {
    problems.push(...loadProblems(err, ibmaPath));
  }
  if (ibas && ibma) problems.push(...(await semantics(home, ibasPath, ibasDoc, ibas, ibmaPath, ibma)));
  return { ibasConf: ibasPath, ibmaConf: ibmaPath, problems };
}

async function semantics(home: IbpHome, ibasPath: string, ibasDoc: LenientDocument | undefined, ibas: IbasConfig, ibmaPath: string, ibma: IbmaConfig): Promise<ConfigCheckProblem[]> {
  const out: ConfigCheckProblem[] = [];
  const err = (where: string, message: string): void => void out.push({ severity: 'error', where, message });
  const warn = (where: string, message: string): void => void out.push({ severity: 'warning', where, message });
  const { ip, port } = ibas.ibas.server;
  const mpm = ibas.ibas.mpm;
  if (mpm.mode === 'DYNAMIC_WORKERPOOL' && mpm.DYNAMIC_WORKERPOOL.max_idle_count > mpm.max_count) {
    warn(at(ibasDoc, ibasPath, ['ibas', 'mpm', 'DYNAMIC_WORKERPOOL', 'max_idle_count']), `ibas.mpm.DYNAMIC_WORKERPOOL.max_idle_count ${mpm.DYNAMIC_WORKERPOOL.max_idle_count} is more than max_count ${mpm.max_count}: the pool never has that many idle workers`);
  }
  const thisNode = ibma.ibma.this_node;
  let replica: ConfigReplica | undefined;
  try {
    replica = ConfigReplica.open(home.replica);
  } catch (e) {
    err(`${home.replica}: `, `no usable local config replica (${toIbpError(e).code}): ibas cannot start without it; run the agent (ibma) or \`ibp local-config\``);
  }
  if (replica) {
    try {
      const snap = replica.snapshot;
      const ibmaDoc = lenientDoc(ibmaPath);
      if (snap.thisNode !== thisNode) {
        err(at(ibmaDoc, ibmaPath, ['ibma', 'this_node']), `ibma.this_node is ${thisNode} but the local config replica (${home.replica}) is for node ${snap.thisNode}`);
      } else {
        const node = snap.node(thisNode);
        const listed = node?.hosts.some((h) => h.ip === ip && Math.abs(h.port) === port) ?? false;
        if (!listed) err(at(ibasDoc, ibasPath, ['ibas', 'server', 'port']), `ibas.server ${ip}:${port} is not a host of node ${thisNode} in the cluster config: clients will never call it`);
        const appsPath = join(home.etc, 'ibp_apps.conf');
        const appsDoc = existsSync(appsPath) ? lenientDoc(appsPath) : undefined;
        const appsList = (appsDoc?.value as { apps?: { app?: unknown }[] } | undefined)?.apps;
        for (const code of snap.servedApps()) {
          const app = snap.app(code);
          if (!app) continue;
          const pkg = join(home.root, 'so', app.bin);
          if (existsSync(pkg)) continue;
          const i = Array.isArray(appsList) ? appsList.findIndex((a) => a?.app === code) : -1;
          const where = i >= 0 ? at(appsDoc, appsPath, ['apps', i, 'bin']) : `${pkg}: `;
          err(where, `app ${code}: its package ${pkg} is missing`);
        }
      }
    } finally {
      replica.close();
    }
  }
  const settings = resolvePlatformSettings(ibas, home.root, ibasPath);
  if (runningPid(settings.pidPath) === undefined) {
    const why = await bindProblem(ip, port);
    if (why) err(at(ibasDoc, ibasPath, ['ibas', 'server', 'ip']), why);
  }
  return out;
}

/** Prints a report the way `ibas -a check` does; returns the exit code (0 no errors, 1 errors). */
export function printCheckReport(r: ConfigCheckReport, write: (s: string) => void): number {
  for (const p of r.problems) write(`${p.where}${p.severity === 'warning' ? 'warning: ' : ''}${p.message}\n`);
  const errors = r.problems.filter((p) => p.severity === 'error').length;
  const warnings = r.problems.length - errors;
  const files = `${r.ibasConf}${r.ibmaConf ? ` and ${r.ibmaConf}` : ''}`;
  if (errors === 0) write(`ok: ${files}${warnings > 0 ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}\n`);
  else write(`${errors} error${errors > 1 ? 's' : ''}${warnings > 0 ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''} in ${files}\n`);
  return errors === 0 ? 0 : 1;
}
