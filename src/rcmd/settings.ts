/**
 * The agent's resolved settings: built once from `ibcmd.conf` and the home, with every path absolute and
 * every duration in ms, then frozen. This is what the daemon process is started with.
 */
import { isAbsolute, join, resolve } from 'node:path';
import type { IbcmdConfig } from '../core/config/index.js';
import { parseLogOutput } from '../core/log.js';

/** Everything the agent needs to run. */
export interface RcmdSettings {
  homeRoot: string;
  /** The ibcmd.conf these came from (absolute). */
  configPath: string;
  ip: string;
  /** 0: any free port. */
  port: number;
  maxConnections: number;
  authTimeoutMs: number;
  idleTimeoutMs: number;
  secretPath: string;
  workDir: string;
  path: string;
  timeoutMs: number;
  maxOutputBytes: number;
  maxConcurrent: number;
  allowNonAscii: boolean;
  blacklist: readonly string[];
  whitelist: readonly string[];
  maxFileSize: number;
  fileDeny: readonly string[];
  mainOutput: string;
  mainLevel: string;
  /** The audit log file (absolute). */
  auditPath: string;
  /** `run/ibcmd.pid`. */
  pidPath: string;
}

/** The pid file of the agent of a home. */
export function rcmdPidPath(homeRoot: string): string {
  return join(homeRoot, 'run', 'ibcmd.pid');
}

const inHome = (homeRoot: string, p: string): string => (isAbsolute(p) ? resolve(p) : resolve(homeRoot, p));

/** Resolves a validated ibcmd.conf against its home. @throws IbpError IBP_ERR_LOG_OUTPUT for a bad audit_output. */
export function resolveRcmdSettings(cfg: IbcmdConfig, homeRoot: string, configPath: string): RcmdSettings {
  const c = cfg.ibcmd;
  const audit = parseLogOutput(c.log.audit_output, homeRoot);
  const settings: RcmdSettings = {
    homeRoot: resolve(homeRoot),
    configPath: resolve(configPath),
    ip: c.server.ip,
    port: c.server.port,
    maxConnections: c.server.max_connections,
    authTimeoutMs: Math.round(c.server.auth_timeout * 1000),
    idleTimeoutMs: Math.round(c.server.idle_timeout * 1000),
    secretPath: inHome(homeRoot, c.security.secret_file),
    workDir: inHome(homeRoot, c.exec.work_dir),
    path: c.exec.path,
    timeoutMs: Math.round(c.exec.timeout * 1000),
    maxOutputBytes: c.exec.max_output_size,
    maxConcurrent: c.exec.max_concurrent,
    allowNonAscii: c.exec.allow_non_ascii,
    blacklist: [...c.exec.blacklist],
    whitelist: [...c.exec.whitelist],
    maxFileSize: c.file.max_file_size,
    fileDeny: [...c.file.deny],
    mainOutput: c.log.main_output,
    mainLevel: c.log.main_loglevel,
    auditPath: audit.kind === 'file' ? audit.path : join(homeRoot, 'log', 'ibcmd_audit.log'),
    pidPath: rcmdPidPath(homeRoot),
  };
  return Object.freeze(settings);
}
