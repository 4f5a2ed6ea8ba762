/**
 * rcmd (the original's ibcmd): the remote command agent and its Node API. Audited command execution and
 * file transfer confined to the agent's home, for peers that hold the shared secret. See docs/rcmd.md.
 */
export { RcmdClient } from './client.js';
export type { ExecOptions, ExecResult, FileTransferResult, RcmdClientOptions } from './client.js';
export { copyFilesToSecondDump } from './second-dump.js';
export type { SecondDumpLog, SecondDumpOptions, SecondDumpResult, SecondDumpTarget } from './second-dump.js';
export { CommandAudit, argumentProblem } from './command-audit.js';
export type { AuditStage, AuditVerdict, CommandPolicy } from './command-audit.js';
export { HomePaths } from './home-paths.js';
export { RcmdServer } from './agent-server.js';
export type { RcmdServerOptions, RcmdServerState } from './agent-server.js';
export { runRcmdDaemon, runningRcmdAddress, runningRcmdPid } from './daemon.js';
export type { RunningRcmd } from './daemon.js';
export { resolveRcmdSettings, rcmdPidPath } from './settings.js';
export type { RcmdSettings } from './settings.js';
export { createSecretFile, readSecretFile, resolveSecret, MIN_SECRET_LENGTH } from './secret.js';
export type { SecretSource } from './secret.js';
export { parseAgentAddress } from './address.js';
export type { AuditRecord, AuditAction, AuditVerdictName } from './audit-log.js';
