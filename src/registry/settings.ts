/**
 * What the ibms processes need to know, resolved once from `ibms.conf` and the home: listen address, log
 * outputs, and the registry's files in the home (pid file, address file, admin token).
 */
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import type { IbmsConfig } from '../core/config/index.js';
import { IbpError } from '../core/errors.js';
import { ibpHome, type IbpHome } from '../core/home.js';
import { DEFAULT_MIN_COMPRESS_SIZE } from './wire.js';

/** The admin token file, inside the registry home. */
export const ADMIN_TOKEN_FILE = join('keys', 'ibms.admin.token');
/** The pid file of the monitor, inside the home. */
export const PID_FILE = join('run', 'ibms.pid');
/** The address the worker really listens on (port 0 in ibms.conf = ephemeral), inside the home. */
export const ADDR_FILE = join('run', 'ibms.addr');

/** Resolved settings of one registry instance (JSON-safe: passed to the daemon and the worker in the environment). */
export interface RegistrySettings {
  homeRoot: string;
  /** The ibms.conf this instance was started with (the worker loads it again to open the store). */
  confPath: string;
  ip: string;
  /** The configured port (0 = ephemeral). */
  port: number;
  pidPath: string;
  addrPath: string;
  tokenPath: string;
  minCompressSize: number;
  autoDownloadBin: boolean;
  /** Largest admin request body, bytes (after gunzip). */
  maxAdminBodyBytes: number;
  /** Largest node request body (heartbeat), bytes (after gunzip). */
  maxNodeBodyBytes: number;
  log: {
    eventOutput: string;
    mainOutput: string;
    mainLevel: string;
    monitorOutput: string;
    monitorLevel: string;
    workerOutput: string;
    workerLevel: string;
  };
}

/** Settings from a loaded ibms.conf. */
export function resolveRegistrySettings(conf: IbmsConfig, homeRoot: string, confPath: string): RegistrySettings {
  const home = ibpHome(homeRoot);
  const l = conf.ibms.log;
  return {
    homeRoot: home.root,
    confPath,
    ip: conf.ibms.server.ip,
    port: conf.ibms.server.port,
    pidPath: home.path(PID_FILE),
    addrPath: home.path(ADDR_FILE),
    tokenPath: home.path(ADMIN_TOKEN_FILE),
    minCompressSize: DEFAULT_MIN_COMPRESS_SIZE,
    autoDownloadBin: conf.ibms.misc.auto_download_bin_enable,
    maxAdminBodyBytes: 1024 * 1024,
    maxNodeBodyBytes: 64 * 1024,
    log: {
      eventOutput: l.event_output,
      mainOutput: l.main_output,
      mainLevel: l.main_loglevel,
      monitorOutput: l.monitor_output,
      monitorLevel: l.monitor_loglevel,
      workerOutput: l.worker_output,
      workerLevel: l.worker_loglevel,
    },
  };
}

/** The pid recorded in a pid file if that process is alive, else undefined. */
export function runningPid(pidPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidPath, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** Removes a file if it still holds what this process wrote (its pid first); ignores a missing file. */
export function removeOwnFile(path: string): void {
  try {
    if (readFileSync(path, 'utf8').split(/\s/)[0] === String(process.pid)) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/** The address a running registry listens on: `run/ibms.addr` (`pid ip port`), when that pid is alive. */
export function readRunningAddress(home: IbpHome): { pid: number; ip: string; port: number } | undefined {
  let parts: string[];
  try {
    parts = readFileSync(home.path(ADDR_FILE), 'utf8').trim().split(/\s+/);
  } catch {
    return undefined;
  }
  const pid = Number(parts[0]);
  const port = Number(parts[2]);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || parts[1] === undefined) return undefined;
  if (runningPid(home.path(PID_FILE)) !== pid) return undefined;
  return { pid, ip: parts[1], port };
}

/** Creates the admin token (32 random bytes, hex, mode 0600) unless it exists; returns whether it was created. */
export function ensureAdminToken(tokenPath: string): boolean {
  if (existsSync(tokenPath)) return false;
  mkdirSync(dirname(tokenPath), { recursive: true });
  writeFileAtomic(tokenPath, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return true;
}

/** Reads the admin token. @throws IbpError IBP_ERR_REGISTRY_AUTH naming the file and how to make it. */
export function readAdminToken(tokenPath: string): string {
  let text: string;
  try {
    text = readFileSync(tokenPath, 'utf8').trim();
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_AUTH', `cannot read the admin token ${tokenPath} (${(err as NodeJS.ErrnoException).code ?? 'error'}): run ibms -a init in the registry home`, { cause: err });
  }
  if (text === '') throw new IbpError('IBP_ERR_REGISTRY_AUTH', `the admin token ${tokenPath} is empty: delete it and run ibms -a init`);
  return text;
}

/** Compares a presented token with the real one in constant time. */
export function tokenMatches(presented: string, real: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(real).digest();
  return timingSafeEqual(a, b);
}
