/**
 * The generic master (lib-zc / ACL / Postfix master): runs the services of a config dir, hands them their
 * listen sockets in the systemd LISTEN_FDS convention, throttles crash loops, runs triggers, reloads softly.
 * `listenFdsFromEnv` / `serveInheritedFds` are the service side for Node.js services. See docs/master.md.
 */
export { Master, type MasterOptions, type MasterState, type MasterStatus, type RestartOutcome } from './master.js';
export {
  loadAloneService,
  loadServiceDir,
  resolveServiceSettings,
  type AloneSource,
  SYSLOG_FACILITIES,
  type ServiceLogTarget,
  type ServiceSettings,
} from './service-config.js';
export { parseCfText, readCfFile, splitCommandLine, type CfLayers, type CfSetting } from './cf-file.js';
export {
  formatListenAddress,
  parseListenAddress,
  parseServiceEndpoints,
  type ListenAddress,
  type ServiceEndpoints,
  type TcpListenAddress,
  type UnixListenAddress,
} from './service-address.js';
export { PidFileLock, type LockState } from './pid-lock.js';
export { RestartThrottle, isCrash, QUICK_CRASH_MS, type ProcessEnd, type RestartThrottleOptions } from './restart-throttle.js';
export type { ProcessStatus, ServiceMode, ServiceStatus, SupervisorState } from './supervisor.js';
export { cfEnvName } from './service-spawn.js';
export {
  InheritedServer,
  inheritedListenFds,
  listenFdsFromEnv,
  LISTEN_FDS_START,
  serveInheritedFds,
  type InheritedFd,
  type InheritedListener,
  type InheritedServerOptions,
  type InheritedServerStop,
  type ListenFdsOptions,
} from './listen-fds.js';
