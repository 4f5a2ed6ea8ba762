/**
 * The platform's resolved settings: built once from ibas.conf (and the home) by the master, frozen, and passed
 * to every worker, so a worker never re-reads or re-validates config.
 */
import { join } from 'node:path';
import type { IbasConfig } from '../core/config/index.js';
import { DEFAULT_LIMITS, type ProtocolLimits, type SecurityFlags } from '../protocol/index.js';

export type MpmMode = 'FORK' | 'STATIC_WORKERPOOL' | 'DYNAMIC_WORKERPOOL';

export interface PlatformLogSettings {
  eventOutput: string;
  mainOutput: string;
  mainLevel: string;
  monitorOutput: string;
  monitorLevel: string;
  workerOutput: string;
  workerLevel: string;
  appOutput: string;
  appLevel: string;
}

/** The dynamic pool's rules (`ibas.mpm.DYNAMIC_WORKERPOOL`), applied once per adjustment cycle. */
export interface DynamicPoolSettings {
  minIdleCount: number;
  maxIdleCount: number;
  /** Most workers started per cycle. */
  createInterval: number;
  /** Most workers retired per cycle. */
  destroyInterval: number;
  /** Length of one adjustment cycle (ext `adjust_interval`, seconds in the file). */
  adjustIntervalMs: number;
}

export interface PlatformSettings {
  homeRoot: string;
  /** The ibas.conf this was read from (absolute). */
  configPath: string;
  ip: string;
  port: number;
  mode: MpmMode;
  /** STATIC: the pool size; DYNAMIC: most workers; FORK: most workers alive at once. */
  maxCount: number;
  maxProcessCount: number;
  dynamic: DynamicPoolSettings;
  acceptQueueCount: number;
  acceptQueueTimeoutMs: number;
  security: SecurityFlags;
  maxSoCacheCount: number;
  limits: ProtocolLimits;
  /** Transactions served on one connection before it is moved on with GOAWAY (ext `server.max_conn_tx`); 0 = never. */
  maxConnTx: number;
  log: PlatformLogSettings;
  ibmaConfigFilename: string;
  /** `ibas_<ip>-<port>`: names the pid file and the board in run/. */
  instanceName: string;
  pidPath: string;
  boardPath: string;
  /** Per-app transaction statistics the master writes about once a second (`ibp top`). */
  statsPath: string;
}

/** Instance name of a platform listening on ip:port (the original's log file naming). */
export function instanceName(ip: string, port: number): string {
  return `ibas_${ip}-${port}`;
}

export function pidPathOf(homeRoot: string, ip: string, port: number): string {
  return join(homeRoot, 'run', `${instanceName(ip, port)}.pid`);
}

export function boardPathOf(homeRoot: string, ip: string, port: number): string {
  return join(homeRoot, 'run', `${instanceName(ip, port)}.board`);
}

export function statsPathOf(homeRoot: string, ip: string, port: number): string {
  return join(homeRoot, 'run', `${instanceName(ip, port)}.stats`);
}

const DEFAULT_ADJUST_INTERVAL_SEC = 1;

const flag = (v: unknown): boolean => v === true || v === 1 || v === '1';

/** Resolves an ibas.conf (already validated by its schema) into platform settings. */
export function resolvePlatformSettings(cfg: IbasConfig, homeRoot: string, configPath: string): PlatformSettings {
  const ibas = cfg.ibas;
  const mpm = ibas.mpm;
  const dyn = mpm.DYNAMIC_WORKERPOOL;
  const server = ibas.server;
  const log = ibas.log;
  const ip = server.ip;
  const port = server.port;
  const settings: PlatformSettings = {
    homeRoot,
    configPath,
    ip,
    port,
    mode: mpm.mode as MpmMode,
    maxCount: mpm.max_count,
    maxProcessCount: mpm.max_process_count ?? mpm.DYNAMIC_WORKERPOOL?.max_process_count ?? 10000,
    dynamic: {
      minIdleCount: dyn?.min_idle_count ?? 1,
      maxIdleCount: dyn?.max_idle_count ?? 5,
      createInterval: dyn?.create_interval ?? 1,
      destroyInterval: dyn?.destroy_interval ?? 10,
      adjustIntervalMs: Math.max(10, Math.round((dyn?.adjust_interval ?? DEFAULT_ADJUST_INTERVAL_SEC) * 1000)),
    },
    acceptQueueCount: mpm.accept_queue_count ?? 1024,
    acceptQueueTimeoutMs: (mpm.accept_queue_timeout ?? 10) * 1000,
    security: { sign: flag(ibas.security?.sign_flag), compress: flag(ibas.security?.compress_flag), encrypt: flag(ibas.security?.encrypt_flag) },
    maxSoCacheCount: ibas.app?.max_so_cache_count ?? 1000,
    limits: {
      ...DEFAULT_LIMITS,
      readTimeoutMs: (server.read_timeout ?? 10) * 1000,
      idleTimeoutMs: (server.idle_timeout ?? 120) * 1000,
      maxBodyBytes: server.max_body_size ?? DEFAULT_LIMITS.maxBodyBytes,
      maxFileBytes: server.max_file_size ?? DEFAULT_LIMITS.maxFileBytes,
      maxFramePayloadBytes: Math.max(DEFAULT_LIMITS.maxFramePayloadBytes, (server.max_body_size ?? 0) + 1024),
    },
    maxConnTx: server.max_conn_tx ?? 0,
    log: {
      eventOutput: log.event_output,
      mainOutput: log.main_output,
      mainLevel: log.main_loglevel,
      monitorOutput: log.monitor_output,
      monitorLevel: log.monitor_loglevel,
      workerOutput: log.worker_output,
      workerLevel: log.worker_loglevel,
      appOutput: log.app_output,
      appLevel: log.app_loglevel,
    },
    ibmaConfigFilename: cfg.ibma?.config_filename ?? 'ibma.conf',
    instanceName: instanceName(ip, port),
    pidPath: pidPathOf(homeRoot, ip, port),
    boardPath: boardPathOf(homeRoot, ip, port),
    statsPath: statsPathOf(homeRoot, ip, port),
  };
  Object.freeze(settings.dynamic);
  return Object.freeze(settings);
}
