/**
 * Entry of a daemonized ibas master, started by `ibas -a start` (env `IBP_MASTER`: the resolved settings): runs the
 * generic master with the ibas service (ibas-master.ts), reports `ready` (its pid, address, first generation's
 * pid) or `failed` over IPC, then detaches and runs until it is stopped.
 */
import { toIbpError } from '../core/errors.js';
import { runIbasMaster } from './ibas-master.js';
import type { PlatformSettings } from './settings.js';

const masterEnv = process.env.IBP_MASTER;
// Not for the generations.
delete process.env.IBP_MASTER;
if (!masterEnv) {
  process.stderr.write('master-main: must be started by `ibas -a start`\n');
  process.exit(2);
}

try {
  const settings = JSON.parse(masterEnv) as PlatformSettings;
  const m = await runIbasMaster(settings);
  process.send?.({ type: 'ready', pid: process.pid, ip: settings.ip, port: settings.port, generationPid: m.generationPid() });
  process.disconnect?.();
  await m.done;
  process.exit(0);
} catch (err) {
  const exit = (): never => process.exit(1);
  if (!process.send) exit();
  setTimeout(exit, 2000).unref();
  process.send!({ type: 'failed', error: toIbpError(err).toJSON() }, undefined, {}, exit);
}
