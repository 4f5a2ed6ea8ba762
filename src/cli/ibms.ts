#!/usr/bin/env node
/**
 * `ibms`: the registry centre's command line (SPEC §2.2), the original's flags verbatim: `-a init|start`,
 * the `-s` shows and `-a` cluster actions (sent to the running daemon over HTTP with the admin token),
 * plus `-a stop`, `-a reload_log` and `-s status` (what ibms.sh did). See docs/registry.md.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClusterConfTexts, defaultIbmsConfText, IBMS_DEFAULTS, loadIbmsConf } from '../core/config/index.js';
import { IbpError, type IbpErrorData } from '../core/errors.js';
import { initHomeDirs, type IbpHome } from '../core/home.js';
import { parseLogOutput } from '../core/log.js';
import {
  ensureAdminToken, readAdminToken, readRunningAddress, RegistryClient, resolveRegistrySettings, runningPid, runRegistryMonitor,
  type RegistrySettings,
} from '../registry/index.js';
import { configPath, homeFrom, parseCommandLine, runCli } from './args.js';
import { ADMIN_FLAGS, checkActionFlags, isAdminAction, runAdminAction, runShow, SHOW_ALIASES, type AdminFlag } from './ibms-admin.js';

const USAGE = `usage: ibms [-f ibms.conf] [--home DIR] <command>
  -a init [--ip IP] [--port PORT]            create etc/ (ibms.conf, ibp_*.conf), log/ file/ so/ keys/ run/, the admin token
  -a start [--foreground]                    start the registry (monitor + worker); --foreground stays attached
  -a stop | -a reload_log | -s status        stop in order | reopen log files | is it running
  -s nodes | apps | projects | nodes_kv | sessions | nodes_changed (also changed_nodes, cnodes_changed)  [--json]
  -a add_node --node N [--invalid I] [--key-exp K]     -a set_node (same)     -a remove_node --node N
  -a add_node_host --node N --ip IP --port P           -a remove_node_host --node N --ip IP --port P   (port < 0: client-only host)
  -a add_app --app A --desc D --bin B --timeout T [--timeout2 T2] [--invalid I] [--server-node S]
  -a set_app (same)     -a update_app --app A     -a remove_app --app A
  -a add_project --project P --server-nodes "S ..." --client-nodes "C ..." --apps "A B ..."
  -a set_project (same)     -a remove_project --project P
  -a add_node_kv --node N --key K --value V     -a set_node_kv (same)     -a remove_node_kv --node N --key K [--value V]
  -a save_config | build_config | distribute_config (commit_config) | download_config --node N
options: --home DIR (default $IBP_HOME, else $HOME); a bare -f name is looked up in $HOME/etc (default ibms.conf)`;

const MONITOR_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'registry', 'monitor-main.js');

/** `--port -18001`: node's parseArgs refuses a value that starts with '-'; the original takes it. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const flagOptions = Object.fromEntries(ADMIN_FLAGS.map((f) => [f, { type: 'string' as const }]));
  const { values } = parseCommandLine(
    joinNegativeValues(argv),
    {
      f: { type: 'string', short: 'f' },
      a: { type: 'string', short: 'a' },
      s: { type: 'string', short: 's' },
      home: { type: 'string' },
      foreground: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...flagOptions,
    },
    USAGE,
  );
  if (values.help || (!values.a && !values.s)) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (values.a && values.s) throw new IbpError('IBP_ERR_USAGE', `give -a or -s, not both\n\n${USAGE}`);
  const home = homeFrom(values.home);
  const given = values as Partial<Record<AdminFlag, string>>;
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  const confFile = (): string => configPath(home, values.f ?? 'ibms.conf');
  const settings = (): RegistrySettings => resolveRegistrySettings(loadIbmsConf(confFile()), home.root, confFile());

  if (values.s) {
    if (values.s === 'status') return status(home, settings());
    const show = SHOW_ALIASES[values.s];
    if (show === undefined) throw new IbpError('IBP_ERR_USAGE', `unknown show -s ${values.s}\n\n${USAGE}`);
    const client = adminClient(home, confFile());
    return runShow(client, show, values.json === true, out);
  }
  const action = values.a!;
  switch (action) {
    case 'init':
      return init(home, given.ip ?? '127.0.0.1', given.port ?? '16001', confFile());
    case 'start':
      return values.foreground ? startForeground(settings()) : startDaemon(settings());
    case 'stop':
      return stop(settings());
    case 'reload_log':
      return reloadLog(settings());
    default:
      break;
  }
  if (!isAdminAction(action)) throw new IbpError('IBP_ERR_USAGE', `unknown action -a ${action}\n\n${USAGE}`);
  checkActionFlags(action, given, USAGE);
  return runAdminAction(adminClient(home, confFile()), action, given, out);
}

/** A client of the running registry: the address it really listens on (run/ibms.addr), else ibms.conf's. */
function adminClient(home: IbpHome, confPath: string): RegistryClient {
  const token = readAdminToken(home.path('keys', 'ibms.admin.token'));
  let ip: string;
  let port: number;
  const running = readRunningAddress(home);
  if (running) ({ ip, port } = running);
  else {
    const conf = loadIbmsConf(confPath);
    ({ ip, port } = conf.ibms.server);
    if (port === 0) throw new IbpError('IBP_ERR_REGISTRY_NOT_RUNNING', `ibms is not running in ${home.root} (ibms.conf has port 0 and there is no live run/ibms.addr): start it with ibms -a start`);
  }
  if (ip === '0.0.0.0' || ip === '::' || ip === '') ip = '127.0.0.1';
  return new RegistryClient({ ip, port, adminToken: token, timeoutMs: 30_000 });
}

function init(home: IbpHome, ip: string, portText: string, confPath: string): number {
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port > 65535) throw new IbpError('IBP_ERR_USAGE', `--port ${portText}: expected 0..65535 (0 = any free port)`);
  const { created, existed } = initHomeDirs(home);
  for (const d of created) process.stdout.write(`created ${d}\n`);
  for (const d of existed) process.stdout.write(`warning: ${d} already exists\n`);
  const texts = defaultClusterConfTexts();
  const files: [string, string][] = [
    [confPath, defaultIbmsConfText({ ip, port })],
    [join(home.etc, IBMS_DEFAULTS.nodes_conf), texts.nodes],
    [join(home.etc, IBMS_DEFAULTS.apps_conf), texts.apps],
    [join(home.etc, IBMS_DEFAULTS.projects_conf), texts.projects],
  ];
  for (const [p, text] of files) {
    if (existsSync(p)) process.stdout.write(`warning: ${p} already exists, left as it is\n`);
    else {
      writeFileSync(p, text);
      process.stdout.write(`created ${p}\n`);
    }
  }
  const token = home.path('keys', 'ibms.admin.token');
  process.stdout.write(ensureAdminToken(token) ? `created ${token} (admin token, mode 0600)\n` : `warning: ${token} already exists, left as it is\n`);
  process.stdout.write(
    `next: copy the app packages into ${home.so}/\n` +
      `      generate each node's key pair: ibpgenrsakeys NODE --home ${home.root} (then copy keys/NODE.key to the node's keys/)\n` +
      `      edit ${confPath} if needed, then: ibms -a start\n`,
  );
  return 0;
}

async function startForeground(s: RegistrySettings): Promise<number> {
  const r = await runRegistryMonitor(s);
  process.stdout.write(`ibms ready ip=${r.address.ip} port=${r.address.port} pid=${process.pid} worker=${r.monitor.workerPid}\n`);
  await r.done;
  return 0;
}

async function startDaemon(s: RegistrySettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  if (pid !== undefined) throw new IbpError('IBP_ERR_REGISTRY_ALREADY_RUNNING', `ibms is already running in ${s.homeRoot} (pid ${pid})`);
  // The daemon's own stdout/stderr (a crash trace, say) go to the main log file, never to our terminal.
  const mainOut = parseLogOutput(s.log.mainOutput, s.homeRoot);
  let outFd: number | 'ignore' = 'ignore';
  if (mainOut.kind === 'file') {
    mkdirSync(dirname(mainOut.path), { recursive: true });
    outFd = openSync(mainOut.path, 'a');
  }
  const child = spawn(process.execPath, [MONITOR_MAIN], {
    detached: true,
    stdio: ['ignore', outFd, outFd, 'ipc'],
    env: { ...process.env, IBP_IBMS_SETTINGS: JSON.stringify(s) },
  });
  const outcome = await new Promise<{ type: string; pid?: number; ip?: string; port?: number; error?: IbpErrorData }>((resolve) => {
    child.once('message', (m) => resolve(m as { type: string }));
    child.once('exit', (code, signal) => resolve({ type: 'failed', error: { code: 'IBP_ERR_REGISTRY_START', message: `ibms exited (code ${code}, signal ${signal}) before it was ready: see ${s.log.mainOutput}` } }));
  });
  if (typeof outFd === 'number') closeSync(outFd);
  if (outcome.type !== 'ready') throw IbpError.fromJSON(outcome.error);
  child.unref();
  child.disconnect?.();
  process.stdout.write(`ibms started ip=${outcome.ip} port=${outcome.port} pid=${outcome.pid}\n`);
  return 0;
}

async function stop(s: RegistrySettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  if (pid === undefined) throw new IbpError('IBP_ERR_REGISTRY_NOT_RUNNING', `ibms is not running in ${s.homeRoot} (no live pid in ${s.pidPath})`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (runningPid(s.pidPath) !== pid) {
      try {
        process.kill(pid, 0);
      } catch {
        process.stdout.write(`ibms stopped (pid ${pid})\n`);
        return 0;
      }
    }
  }
  process.stderr.write(`ibms (pid ${pid}) did not stop within 60 s\n`);
  return 1;
}

function reloadLog(s: RegistrySettings): number {
  const pid = runningPid(s.pidPath);
  if (pid === undefined) throw new IbpError('IBP_ERR_REGISTRY_NOT_RUNNING', `ibms is not running in ${s.homeRoot} (no live pid in ${s.pidPath})`);
  process.kill(pid, 'SIGUSR1');
  process.stdout.write(`ibms (pid ${pid}) reopens its log files\n`);
  return 0;
}

async function status(home: IbpHome, s: RegistrySettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  const addr = readRunningAddress(home);
  if (pid === undefined || addr === undefined) {
    process.stdout.write(`ibms is not running in ${home.root}\n`);
    return 1;
  }
  const ip = addr.ip === '0.0.0.0' || addr.ip === '::' ? '127.0.0.1' : addr.ip;
  const h = await new RegistryClient({ ip, port: addr.port, timeoutMs: 5_000 }).health().catch(() => undefined);
  process.stdout.write(`ibms is running (pid ${pid}) on ${addr.ip}:${addr.port}, worker ${h ? `pid ${h.pid}, up since ${new Date(h.startedAtMs).toISOString()}` : 'not answering'}\n`);
  return h ? 0 : 1;
}

void runCli(() => main(process.argv.slice(2)));
