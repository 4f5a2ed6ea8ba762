/** Entry of a daemonized ibas master (started by `ibas -a start`): reports ready/failed over IPC, then detaches. */
import { toIbpError } from '../core/errors.js';
import { runMaster } from './master-run.js';
import type { PlatformSettings } from './settings.js';

const settings = JSON.parse(process.env.IBP_MASTER ?? 'null') as PlatformSettings | null;
if (!settings) {
  process.stderr.write('master-main: must be started by `ibas -a start`\n');
  process.exit(2);
}
try {
  const m = await runMaster(settings);
  process.send?.({ type: 'ready', pid: process.pid, ip: m.pool.address.ip, port: m.pool.address.port });
  process.disconnect?.();
  await m.done;
  process.exit(0);
} catch (err) {
  process.send?.({ type: 'failed', error: toIbpError(err).toJSON() });
  process.exit(1);
}
