/**
 * A service's resolved settings, from its `*.cf` file over the shared `*.gcf` files of the config dir
 * (lib-zc's `-C config_dir`, SPEC §8.1 #105/#106). Keys starting with `server-` are the master's and are
 * checked (an unknown one is an error); every other key is a free key passed on to the service.
 * See docs/master.md for the table of keys.
 */
import { readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { cfError, mergeCfLayers, readCfFile, splitCommandLine, type CfLayers, type CfSetting } from './cf-file.js';
import { parseServiceEndpoints, type ServiceEndpoints } from './service-address.js';

/** Where a service's stdout/stderr go (`server-log`). */
export type ServiceLogTarget =
  | { kind: 'inherit' }
  | { kind: 'masterlog'; path: string }
  | { kind: 'syslog'; facility: string };

/** A service as the master runs it. Frozen. */
export interface ServiceSettings {
  /** The `.cf` file name without `.cf` (or the name given in alone mode). */
  readonly name: string;
  /** The `.cf` file (or `(command line)`). */
  readonly file: string;
  /** `server-command` as argv (no shell). */
  readonly command: readonly string[];
  readonly endpoints: ServiceEndpoints;
  /** `server-proc-count`: processes kept running (on-demand: at most this many). */
  readonly procCount: number;
  /** `server-on-demand`: semi-resident, started on the first connection. */
  readonly onDemand: boolean;
  /** `max-idle` seconds (0 = never): passed on; the service exits when idle that long. */
  readonly maxIdleSec: number;
  /** `max-use` connections (0 = unlimited): passed on; the service exits after serving that many. */
  readonly maxUse: number;
  readonly log: ServiceLogTarget;
  /** `server-nonblocking`: the O_NONBLOCK flag the listen sockets are handed over with. */
  readonly nonBlocking: boolean;
  /** `server-stop-timeout`: how long a soft stop waits before SIGKILL. */
  readonly stopTimeoutMs: number;
  /** `server-throttle-min` / `-max`: the restart delay after the first quick crash, and its cap. */
  readonly throttleMinMs: number;
  readonly throttleMaxMs: number;
  /**
   * `server-ready = notify`: a process is ready only once it writes `READY=1` to the fd named by `IBP_NOTIFY_FD`
   * (sd_notify style); a soft restart then stops the old generation only after the new one is ready.
   * `start` (default): ready as soon as it is started.
   */
  readonly readyNotify: boolean;
  /** `server-ready-timeout`: how long a new generation may take to be ready at a soft restart. */
  readonly readyTimeoutMs: number;
  /** Every key as merged (free keys included), passed to the service. */
  readonly keys: Readonly<Record<string, string>>;
}

/** The master's keys, each with the check of its value. */
const SERVER_KEYS = new Set([
  'server-command',
  'server-service',
  'server-proc-count',
  'server-on-demand',
  'server-log',
  'server-nonblocking',
  'server-stop-timeout',
  'server-throttle-min',
  'server-throttle-max',
  'server-ready',
  'server-ready-timeout',
]);

export const SYSLOG_FACILITIES = [
  'auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'syslog', 'user', 'uucp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;

/**
 * Resolves a service from its layers (shared settings first, its own file last; later wins).
 * @param file the service's own file, named in errors about missing keys.
 * @throws IbpError IBP_ERR_MASTER_CONFIG naming file:line and key.
 */
export function resolveServiceSettings(name: string, file: string, layers: CfLayers, cwd: string = process.cwd()): ServiceSettings {
  const m = mergeCfLayers(layers);
  for (const s of m.values()) {
    if (s.key.startsWith('server-') && !SERVER_KEYS.has(s.key)) {
      throw cfError(s, `unknown master key (known: ${[...SERVER_KEYS].join(', ')}; free keys must not start with server-)`);
    }
  }
  const cmd = m.get('server-command');
  if (!cmd || cmd.value === '') throw cfError({ file, key: 'server-command' }, 'missing: the program to run (argv, no shell)');
  let command: string[];
  try {
    command = splitCommandLine(cmd.value);
  } catch (err) {
    throw cfError(cmd, (err as Error).message);
  }
  if (command.length === 0) throw cfError(cmd, 'expected a program');
  const svc = m.get('server-service');
  let endpoints: ServiceEndpoints = { kind: 'listen', addresses: [] };
  if (svc) {
    try {
      endpoints = parseServiceEndpoints(svc.value, name, cwd);
    } catch (err) {
      throw cfError(svc, (err as Error).message);
    }
  }
  const onDemand = bool(m, 'server-on-demand', false);
  if (onDemand && (endpoints.kind !== 'listen' || endpoints.addresses.length === 0)) {
    throw cfError(m.get('server-on-demand')!, 'an on-demand service needs listen addresses in server-service');
  }
  const throttleMinMs = seconds(m, 'server-throttle-min', 0.1, 0.001);
  const throttleMaxMs = seconds(m, 'server-throttle-max', 30, 0.001);
  if (throttleMaxMs < throttleMinMs) throw cfError(m.get('server-throttle-max')!, 'must not be less than server-throttle-min');
  const ready = m.get('server-ready');
  if (ready && ready.value !== 'start' && ready.value !== 'notify') throw cfError(ready, `expected start or notify, got ${JSON.stringify(ready.value)}`);
  const keys: Record<string, string> = {};
  for (const [k, s] of m) keys[k] = s.value;
  return Object.freeze({
    name,
    file,
    command: Object.freeze(command),
    endpoints,
    procCount: integer(m, 'server-proc-count', 1, 1, 10_000),
    onDemand,
    maxIdleSec: seconds(m, 'max-idle', 0, 0) / 1000,
    maxUse: integer(m, 'max-use', 0, 0, Number.MAX_SAFE_INTEGER),
    log: logTarget(m.get('server-log'), cwd),
    nonBlocking: bool(m, 'server-nonblocking', true),
    stopTimeoutMs: seconds(m, 'server-stop-timeout', 3600, 0),
    throttleMinMs,
    throttleMaxMs,
    readyNotify: ready?.value === 'notify',
    readyTimeoutMs: seconds(m, 'server-ready-timeout', 60, 0.001),
    keys: Object.freeze(keys),
  });
}

/** Reads every `*.gcf` of a dir, in name order. */
function readGcfDir(dir: string, names?: string[]): CfSetting[][] {
  let all = names;
  if (!all) {
    try {
      all = readdirSync(dir).sort();
    } catch (err) {
      throw cfError({ file: dir }, `cannot read the config dir: ${(err as Error).message}`, err);
    }
  }
  return all.filter((n) => n.endsWith('.gcf')).map((n) => readCfFile(join(dir, n)));
}

/**
 * Loads every service of a config dir: each `*.cf` is one service over all `*.gcf` (both read in name order,
 * so the result does not depend on the directory's order).
 * @throws IbpError IBP_ERR_MASTER_CONFIG (unreadable dir, no `*.cf`, or a bad file).
 */
export function loadServiceDir(dir: string, cwd: string = process.cwd()): ServiceSettings[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw cfError({ file: dir }, `cannot read the config dir: ${(err as Error).message}`, err);
  }
  const shared = readGcfDir(dir, names);
  const services = names.filter((n) => n.endsWith('.cf')).map((n) => {
    const file = join(dir, n);
    return resolveServiceSettings(basename(n, '.cf'), file, [...shared, readCfFile(file)], cwd);
  });
  if (services.length === 0) throw cfError({ file: dir }, 'no *.cf service file in the config dir');
  return services;
}

/** One source of alone mode's settings, in command-line order. */
export type AloneSource =
  | { kind: 'config-path'; dir: string }
  | { kind: 'config'; file: string }
  | { kind: 'key'; key: string; value: string; position: number };

/**
 * The one service of alone mode (lib-zc's `alone`, SPEC §8.1 #110): `*.gcf` of each `config-path` dir and each
 * `config` file in order, then the command-line keys, which override files. Named after the last `config`
 * file, else `alone`.
 * @throws IbpError IBP_ERR_MASTER_CONFIG.
 */
export function loadAloneService(sources: readonly AloneSource[], cwd: string = process.cwd()): ServiceSettings {
  const layers: CfSetting[][] = [];
  const flags: CfSetting[] = [];
  let name = 'alone';
  for (const s of sources) {
    if (s.kind === 'key') flags.push({ key: s.key, value: s.value, file: '(command line)', line: s.position });
    else if (s.kind === 'config') {
      layers.push(readCfFile(s.file));
      name = basename(s.file, '.cf');
    } else layers.push(...readGcfDir(s.dir));
  }
  return resolveServiceSettings(name, '(command line)', [...layers, flags], cwd);
}

function bool(m: Map<string, CfSetting>, key: string, dflt: boolean): boolean {
  const s = m.get(key);
  if (!s) return dflt;
  const v = s.value.toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(v)) return true;
  if (['no', 'false', 'off', '0'].includes(v)) return false;
  throw cfError(s, `expected yes or no, got ${JSON.stringify(s.value)}`);
}

function integer(m: Map<string, CfSetting>, key: string, dflt: number, min: number, max: number): number {
  const s = m.get(key);
  if (!s) return dflt;
  const n = /^\d+$/.test(s.value) ? Number(s.value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw cfError(s, `expected an integer in ${min}..${max}, got ${JSON.stringify(s.value)}`);
  }
  return n;
}

/** A duration in seconds (decimals allowed), returned in ms. */
function seconds(m: Map<string, CfSetting>, key: string, dfltSec: number, minSec: number): number {
  const s = m.get(key);
  if (!s) return Math.round(dfltSec * 1000);
  const n = /^\d+(\.\d+)?$/.test(s.value) ? Number(s.value) : Number.NaN;
  if (!Number.isFinite(n) || n < minSec || n > 31_536_000) {
    throw cfError(s, `expected seconds >= ${minSec} (decimals allowed), got ${JSON.stringify(s.value)}`);
  }
  return Math.round(n * 1000);
}

function logTarget(s: CfSetting | undefined, cwd: string): ServiceLogTarget {
  if (!s || s.value === '') return { kind: 'inherit' };
  const comma = s.value.indexOf(',');
  const kind = (comma < 0 ? s.value : s.value.slice(0, comma)).trim();
  const arg = comma < 0 ? '' : s.value.slice(comma + 1).trim();
  if (kind === 'syslog') {
    if (!(SYSLOG_FACILITIES as readonly string[]).includes(arg)) {
      throw cfError(s, `expected syslog,FACILITY with FACILITY one of ${SYSLOG_FACILITIES.join(' ')}, got ${JSON.stringify(arg)}`);
    }
    return { kind: 'syslog', facility: arg };
  }
  if (kind === 'masterlog') {
    if (arg === '') throw cfError(s, 'expected masterlog,PATH (the file the service output is appended to)');
    return { kind: 'masterlog', path: resolve(cwd, arg) };
  }
  throw cfError(s, `expected syslog,FACILITY or masterlog,PATH, got ${JSON.stringify(s.value)}`);
}
