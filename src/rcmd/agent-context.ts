/** What the agent's request handlers share: the context of one agent, the error answer, the audit line. */
import type { IbpError } from '../core/errors.js';
import type { IbpLogger } from '../core/log.js';
import type { AuditLog, AuditRecord } from './audit-log.js';
import type { FrameChannel } from './channel.js';
import type { CommandAudit } from './command-audit.js';
import type { HomePaths } from './home-paths.js';
import type { RcmdSettings } from './settings.js';
import { FrameType, jsonBody } from './wire.js';

/** What every connection of one agent shares. */
export interface AgentContext {
  settings: RcmdSettings;
  secret: Buffer;
  commands: CommandAudit;
  paths: HomePaths;
  auditLog: AuditLog;
  log: IbpLogger;
  /** Commands running now (all connections). */
  running: { count: number };
  /** Aborted when the agent must stop at once: running commands are killed. */
  stopNow: AbortSignal;
}

/** Sends an error as data (signed after the handshake) and returns it. */
export async function sendError(ch: FrameChannel, err: IbpError): Promise<void> {
  await ch.send(FrameType.ERROR, jsonBody(err.toJSON())).catch(() => undefined);
}

/** Writes one audit line for a request of this connection. */
export function audit(ctx: AgentContext, ch: FrameChannel, rec: Omit<AuditRecord, 'time' | 'peer'>): void {
  ctx.auditLog.write({ peer: ch.peer, ...rec });
}

