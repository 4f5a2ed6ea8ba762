/** Entry of a daemonized ibcmd agent (started by `ibcmd -a start`): reports ready/failed over IPC, then detaches. */
import { toIbpError } from '../core/errors.js';
import { runRcmdDaemon } from './daemon.js';
import type { RcmdSettings } from './settings.js';

const settings = JSON.parse(process.env.IBP_RCMD ?? 'null') as RcmdSettings | null;
if (!settings) {
  process.stderr.write('rcmd daemon-main: must be started by `ibcmd -a start`\n');
  process.exit(2);
}
try {
  const d = await runRcmdDaemon(settings);
  process.send?.({ type: 'ready', pid: process.pid, ip: d.address.ip, port: d.address.port });
  process.disconnect?.();
  await d.done;
  process.exit(0);
} catch (err) {
  process.send?.({ type: 'failed', error: toIbpError(err).toJSON() });
  process.exit(1);
}
