/**
 * Zero-downtime platform upgrade (`SIGUSR2`, feature #58): the record of its outcome. The upgrade itself is the
 * generic master's soft restart (ibas-master.ts): a new generation starts on the socket the master holds, and the
 * old one drains once the new one is ready; if the new one fails, the old one keeps serving.
 *
 * The outcome is written to `run/ibas_<ip>-<port>.upgrade` (JSON {@link UpgradeStatus}), which is how
 * `ibas -a restart_graceful` learns it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import type { IbpErrorData } from '../core/errors.js';
import type { PlatformSettings } from './settings.js';

/** How long a new generation may take to be ready (override: env `IBP_UPGRADE_READY_TIMEOUT_MS` of the master). */
export const DEFAULT_UPGRADE_READY_TIMEOUT_MS = 60_000;

/** Where an upgrade stands, as the master records it. */
export interface UpgradeStatus {
  state: 'starting' | 'switched' | 'failed';
  /** The master that received SIGUSR2 (the pid in `run/ibas_<ip>-<port>.pid`; it stays). */
  masterPid: number;
  /** The generation serving when the upgrade began (it drains once the new one is ready). */
  fromPid?: number;
  /** The new generation (when it was started). */
  toPid?: number;
  /** Why it failed (`failed`). */
  error?: IbpErrorData;
  /** When this state was reached (ms since the epoch). */
  atMs: number;
}

/** `run/ibas_<ip>-<port>.upgrade`. */
export function upgradeStatusPathOf(s: Pick<PlatformSettings, 'homeRoot' | 'instanceName'>): string {
  return join(s.homeRoot, 'run', `${s.instanceName}.upgrade`);
}

/** The last recorded upgrade of an instance, or undefined (none, or unreadable). */
export function readUpgradeStatus(path: string): UpgradeStatus | undefined {
  try {
    const st = JSON.parse(readFileSync(path, 'utf8')) as UpgradeStatus;
    return typeof st === 'object' && st !== null && typeof st.state === 'string' && typeof st.masterPid === 'number' ? st : undefined;
  } catch {
    return undefined;
  }
}

export function writeUpgradeStatus(path: string, st: UpgradeStatus): void {
  writeFileAtomic(path, `${JSON.stringify(st)}\n`, { sync: false });
}

/** The ready timeout from the environment, else the default. */
export function upgradeReadyTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.IBP_UPGRADE_READY_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_UPGRADE_READY_TIMEOUT_MS;
}
