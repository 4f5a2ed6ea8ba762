/**
 * Entry of one ibas generation, run as a service of the generic master (`ibas -a start` runs the master, see
 * ibas-master.ts; a hand-written `*.cf` for `ibp master` works too):
 *
 *     node dist/src/platform/generation-main.js --home HOME --config HOME/etc/ibas.conf
 *
 * It reads ibas.conf from disk (so a soft restart brings the config as it is now), takes its listen socket from
 * LISTEN_FDS (exactly one, which must be ibas.server ip:port), starts the pool and, once it serves, writes
 * `READY=1` to the master's notify fd (`IBP_NOTIFY_FD`, `server-ready = notify`). On failure it writes
 * `STATUS=<code>: <message>` there (the master reports it as the reason) and exits 1.
 */
import { writeSync } from 'node:fs';
import { loadIbasConf } from '../core/config/index.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { inheritedListenFds } from '../master/listen-fds.js';
import { runGeneration } from './master-run.js';
import { resolvePlatformSettings } from './settings.js';

// Ctrl-C in a terminal reaches the whole process group: the master decides how its services stop.
process.on('SIGINT', () => undefined);

const notifyFd = Number(process.env.IBP_NOTIFY_FD);
delete process.env.IBP_NOTIFY_FD;
const masterPid = Number(process.env.IBP_MASTER_PID) || undefined;

/** A line to the master's notify pipe (nothing when not started with `server-ready = notify`). */
function notify(line: string): void {
  if (!Number.isInteger(notifyFd) || notifyFd < 3) return;
  try {
    writeSync(notifyFd, `${line.replace(/\n/g, ' ')}\n`);
  } catch {
    /* the master is gone */
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

try {
  const configPath = arg('config');
  const homeRoot = arg('home') ?? process.env.IBP_HOME;
  if (!configPath || !homeRoot) throw new IbpError('IBP_ERR_USAGE', 'usage: generation-main.js --home HOME --config ibas.conf (started by the master)');
  const settings = resolvePlatformSettings(loadIbasConf(configPath), homeRoot, configPath);
  const fds = inheritedListenFds();
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete process.env[k];
  if (fds.length !== 1) {
    throw new IbpError('IBP_ERR_PLATFORM_LISTEN', `an ibas generation needs exactly one listen socket from its master (LISTEN_FDS), got ${fds.length}: start it with ibas -a start`);
  }
  const gen = await runGeneration(settings, { listenFd: fds[0]!.fd, masterPid });
  // Checked before any connection is accepted: the pool's listen callback and this code run in one go of the
  // microtask queue, before the event loop polls the socket.
  const got = gen.pool.address;
  if (got.ip !== settings.ip || got.port !== settings.port) {
    await gen.pool.stop(0);
    throw new IbpError('IBP_ERR_PLATFORM_LISTEN', `the socket inherited from the master listens on ${got.ip}:${got.port}, but ${configPath} names ${settings.ip}:${settings.port}`);
  }
  notify(`STATUS=serving on ${got.ip}:${got.port} with ${gen.pool.liveCount} workers`);
  notify('READY=1');
  await gen.done;
  process.exit(0);
} catch (err) {
  const e = toIbpError(err);
  notify(`STATUS=${e.code}: ${e.message}`);
  process.stderr.write(`ibas generation ${process.pid}: ${e.code}: ${e.message}\n`);
  process.exit(1);
}
