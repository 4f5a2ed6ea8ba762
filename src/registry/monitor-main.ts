/** Entry of a daemonised ibms monitor (started by `ibms -a start`): reports ready/failed over IPC, then detaches. */
import { toIbpError } from '../core/errors.js';
import { runRegistryMonitor } from './monitor-run.js';
import type { RegistrySettings } from './settings.js';

const settings = JSON.parse(process.env.IBP_IBMS_SETTINGS ?? 'null') as RegistrySettings | null;
if (!settings) {
  process.stderr.write('ibms monitor: must be started by `ibms -a start`\n');
  process.exit(2);
}
delete process.env.IBP_IBMS_SETTINGS;
try {
  const r = await runRegistryMonitor(settings);
  process.send?.({ type: 'ready', pid: process.pid, ip: r.address.ip, port: r.address.port });
  process.disconnect?.();
  await r.done;
  process.exit(0);
} catch (err) {
  process.send?.({ type: 'failed', error: toIbpError(err).toJSON() });
  process.exit(1);
}
