/**
 * Entry of a daemonized ibas master, started either by `ibas -a start` (env `IBP_MASTER`: the resolved settings)
 * or by the previous generation on SIGUSR2 (env `IBP_UPGRADE`: this process reads ibas.conf from disk itself and
 * takes over the inherited listen socket). Reports `ready` or `failed` over IPC, then detaches.
 */
import { loadIbasConf } from '../core/config/index.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { runMaster, type RunMasterOptions } from './master-run.js';
import { resolvePlatformSettings, type PlatformSettings } from './settings.js';
import type { UpgradeHandOver } from './upgrade.js';

const masterEnv = process.env.IBP_MASTER;
const upgradeEnv = process.env.IBP_UPGRADE;
// Not for the workers, nor for a later generation.
delete process.env.IBP_MASTER;
delete process.env.IBP_UPGRADE;
if (!masterEnv && !upgradeEnv) {
  process.stderr.write('master-main: must be started by `ibas -a start`\n');
  process.exit(2);
}

/** A new generation's settings: the config on disk now, which must still name the inherited socket's address. */
function nextGeneration(h: UpgradeHandOver): { settings: PlatformSettings; options: RunMasterOptions } {
  const settings = resolvePlatformSettings(loadIbasConf(h.configPath), h.homeRoot, h.configPath);
  if (settings.ip !== h.ip || settings.port !== h.port) {
    throw new IbpError(
      'IBP_ERR_PLATFORM_UPGRADE',
      `${h.configPath} now names ${settings.ip}:${settings.port} but the platform listens on ${h.ip}:${h.port}: a graceful restart keeps the listen address (stop and start to move it)`,
    );
  }
  return { settings, options: { inherited: { listenFd: h.listenFd, fromPid: h.fromPid } } };
}

try {
  const { settings, options } = upgradeEnv
    ? nextGeneration(JSON.parse(upgradeEnv) as UpgradeHandOver)
    : { settings: JSON.parse(masterEnv!) as PlatformSettings, options: {} };
  const m = await runMaster(settings, options);
  process.send?.({ type: 'ready', pid: process.pid, ip: m.pool.address.ip, port: m.pool.address.port, workers: m.pool.liveCount });
  process.disconnect?.();
  await m.done;
  process.exit(0);
} catch (err) {
  const exit = (): never => process.exit(1);
  if (!process.send) exit();
  // Exit once the report is out (an old generation waiting on SIGUSR2 logs it as the reason).
  setTimeout(exit, 2000).unref();
  process.send!({ type: 'failed', error: toIbpError(err).toJSON() }, undefined, {}, exit);
}
