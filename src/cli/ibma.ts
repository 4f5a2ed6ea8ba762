#!/usr/bin/env node
/**
 * `ibma`: the registry agent's command line (SPEC §2.3): start (daemon or foreground), start_cleanly,
 * stop, init, and the dumps of the local config replica. The daemon is this same script run with
 * `--foreground` in a detached child that reports its readiness over IPC.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigReplica, agentPidPath, livePid, runAgent, type AgentReady } from '../agent/index.js';
import { defaultIbmaConfText, loadIbmaConf } from '../core/config/index.js';
import { IbpError, toIbpError, type IbpErrorData } from '../core/errors.js';
import { assertHome, initHomeDirs, type IbpHome } from '../core/home.js';
import { parseLogOutput } from '../core/log.js';
import { RegistryClient } from '../registry/index.js';
import { configPath, formatTable, homeFrom, parseCommandLine, parseHostArg, runCli } from './args.js';

const USAGE = `usage: ibma [-f ibma.conf] -a start [--foreground] [--host IP:PORT] [--wait SEC]
                                  start the agent (a daemon; --foreground stays attached and prints
                                  "ibma ready node=N version=V" when the local config replica is usable)
       ibma [-f ibma.conf] -a start_cleanly [...]   remove the config space run/ibma/ first, then start
       ibma -a stop                 stop the running agent (SIGTERM to the pid in run/ibma.pid)
       ibma -a init [--this-node NODE] [--ibms IP:PORT]
                                  create etc/ log/ file/ so/ keys/ run/ and a default etc/ibma.conf
       ibma -s this_node | nodes | apps | nodes_kv   show the local config replica
options: --home DIR (default $IBP_HOME, else $HOME); a bare -f name is looked up in $HOME/etc
         --host IP:PORT  the host this agent reports to the registry (default: this node's host on a local interface);
                         a negative PORT (127.0.0.1:-18001) names a client-only host
         --wait SEC      how long -a start waits for the daemon to be ready (default 30)
signals: TERM exit, USR1 reopen the log files, USR2 clean stop (remove run/ibma/, then exit)`;

const SELF = fileURLToPath(import.meta.url);
/** Set in the daemon child so it reports over IPC instead of printing the readiness line. */
const DAEMON_ENV = 'IBP_IBMA_DAEMON';

async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    argv,
    {
      f: { type: 'string', short: 'f' },
      a: { type: 'string', short: 'a' },
      s: { type: 'string', short: 's' },
      home: { type: 'string' },
      foreground: { type: 'boolean' },
      host: { type: 'string' },
      wait: { type: 'string' },
      'this-node': { type: 'string' },
      ibms: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help || (!values.a && !values.s)) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const home = homeFrom(values.home);
  const conf = values.f ?? 'ibma.conf';
  if (values.a) {
    switch (values.a) {
      case 'init':
        return init(home, values['this-node'] ?? 'NODE', values.ibms);
      case 'start':
      case 'start_cleanly': {
        const cleanly = values.a === 'start_cleanly';
        const host = values.host === undefined ? undefined : parseHostArg(values.host, '--host');
        if (values.foreground) return startForeground(home, conf, cleanly, host);
        return startDaemon(home, conf, values.a, values.host, parseWait(values.wait));
      }
      case 'stop':
        return stop(home);
      default:
        throw new IbpError('IBP_ERR_USAGE', `unknown action -a ${values.a}\n\n${USAGE}`);
    }
  }
  return show(home, values.s ?? '');
}

function parseWait(text: string | undefined): number {
  if (text === undefined) return 30;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new IbpError('IBP_ERR_USAGE', `--wait ${text}: expected seconds >= 0`);
  return n;
}

function init(home: IbpHome, thisNode: string, ibms: string | undefined): number {
  const addr = ibms === undefined ? undefined : parseHostArg(ibms, '--ibms', { clientOnly: false });
  const { created, existed } = initHomeDirs(home);
  for (const d of created) process.stdout.write(`created ${d}\n`);
  for (const d of existed) process.stdout.write(`warning: ${d} already exists\n`);
  const p = join(home.etc, 'ibma.conf');
  if (existsSync(p)) process.stdout.write(`warning: ${p} already exists, left as it is\n`);
  else {
    writeFileSync(p, defaultIbmaConfText({ thisNode, ibmsIp: addr?.ip, ibmsPort: addr?.port }));
    process.stdout.write(`created ${p}\n`);
  }
  process.stdout.write(
    `next: on the registry run \`ibpgenrsakeys ${thisNode}\` and copy ${thisNode}.key to ${home.keys}/, then ibma -a start\n`,
  );
  return 0;
}

async function startForeground(home: IbpHome, conf: string, cleanly: boolean, host: { ip: string; port: number } | undefined): Promise<number> {
  const daemonChild = process.env[DAEMON_ENV] === '1' && typeof process.send === 'function';
  // The parent may have stopped waiting (--wait) and closed the channel.
  const tellParent = (m: object): void => {
    if (daemonChild && process.connected) process.send!(m);
  };
  let running;
  let thisNode: string;
  try {
    assertHome(home);
    const cfg = loadIbmaConf(configPath(home, conf));
    thisNode = cfg.ibma.this_node;
    running = await runAgent({ home, conf: cfg, cleanly, host, createClient: (o) => new RegistryClient(o) });
  } catch (err) {
    tellParent({ type: 'failed', error: toIbpError(err).toJSON() });
    throw err;
  }
  const r = await Promise.race([running.ready.catch(() => undefined), running.done.then(() => undefined)]);
  if (r !== undefined) {
    if (daemonChild) {
      tellParent({ type: 'ready', pid: process.pid, node: thisNode, ready: r });
      if (process.connected) process.disconnect();
    } else {
      process.stdout.write(`${readyLine(thisNode, r)}\n`);
    }
  }
  const how = await running.done;
  return how === 'cleaned' || how === 'stopped' ? 0 : 1;
}

function readyLine(node: string, r: AgentReady): string {
  return r.source === 'registry'
    ? `ibma ready node=${node} version=${r.snapshotVersion} view=${r.viewVersion}`
    : `ibma ready node=${node} version=${r.snapshotVersion} source=local`;
}

async function startDaemon(home: IbpHome, conf: string, action: string, host: string | undefined, waitSec: number): Promise<number> {
  assertHome(home);
  const confPath = resolve(configPath(home, conf));
  const cfg = loadIbmaConf(confPath);
  const node = cfg.ibma.this_node;
  const pid = livePid(agentPidPath(home));
  if (pid !== undefined) throw new IbpError('IBP_ERR_AGENT_ALREADY_RUNNING', `ibma of node ${node} is already running in ${home.root} (pid ${pid})`);
  // The daemon's own stdout/stderr (a crash trace, say) go to the main log, never to the caller's terminal.
  const mainOut = parseLogOutput(cfg.ibma.log.main_output, home.root);
  let outFd: number | 'ignore' = 'ignore';
  if (mainOut.kind === 'file') {
    mkdirSync(dirname(mainOut.path), { recursive: true });
    outFd = openSync(mainOut.path, 'a');
  }
  const args = [SELF, '-a', action, '--foreground', '--home', home.root, '-f', confPath, ...(host === undefined ? [] : ['--host', host])];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', outFd, outFd, 'ipc'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  type Outcome = { type: 'ready'; pid: number; ready: AgentReady } | { type: 'failed'; error: IbpErrorData } | { type: 'waiting' };
  const outcome = await new Promise<Outcome>((done) => {
    const timer = setTimeout(() => done({ type: 'waiting' }), waitSec * 1000);
    child.once('message', (m) => {
      clearTimeout(timer);
      done(m as Outcome);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      done({ type: 'failed', error: { code: 'IBP_ERR_INTERNAL', message: `ibma exited (code ${code}, signal ${signal}) before it was ready; see ${cfg.ibma.log.main_output}` } });
    });
  });
  if (typeof outFd === 'number') closeSync(outFd);
  if (outcome.type === 'failed') throw IbpError.fromJSON(outcome.error);
  child.unref();
  child.disconnect?.();
  if (outcome.type === 'waiting') {
    process.stdout.write(`ibma node=${node} started (pid ${child.pid}) but not ready after ${waitSec} s: no local snapshot yet and the registry is unreachable; it keeps retrying\n`);
    return 0;
  }
  const r = outcome.ready;
  process.stdout.write(
    `ibma node=${node} started (pid ${outcome.pid}): snapshot ${r.snapshotVersion}` +
      (r.source === 'registry' ? `, registry view ${r.viewVersion}\n` : ' from the local replica; the registry is unreachable, retrying\n'),
  );
  return 0;
}

async function stop(home: IbpHome): Promise<number> {
  const pidPath = agentPidPath(home);
  const pid = livePid(pidPath);
  if (pid === undefined) throw new IbpError('IBP_ERR_AGENT_NOT_RUNNING', `ibma is not running in ${home.root} (no live pid in ${pidPath})`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      process.stdout.write(`ibma stopped (pid ${pid})\n`);
      return 0;
    }
  }
  process.stderr.write(`ibma (pid ${pid}) did not stop within 15 s\n`);
  return 1;
}

function show(home: IbpHome, what: string): number {
  if (!['this_node', 'nodes', 'apps', 'nodes_kv'].includes(what)) {
    throw new IbpError('IBP_ERR_USAGE', `unknown show -s ${what}\n\n${USAGE}`);
  }
  const replica = ConfigReplica.open(home.replica);
  const snap = replica.snapshot;
  replica.close();
  const out = (s: string): boolean => process.stdout.write(`${s}\n`);
  const epoch = (sec: number): string => (sec > 0 ? new Date(sec * 1000).toISOString() : '-');
  switch (what) {
    case 'this_node': {
      const me = snap.thisNodeConfig();
      out(formatTable(['item', 'value'], [
        ['this_node', snap.thisNode],
        ['snapshot', `${snap.version} (${new Date(snap.createdAtMs).toISOString()})`],
        ['ibms_server', `${snap.ibmsServer.ip}:${snap.ibmsServer.port}`],
        ['invalid', me?.invalid ? 1 : 0],
        ['hosts', me?.hosts.map((h) => `${h.ip}:${h.clientOnly ? -h.port : h.port}`).join(' ') || '-'],
        ['key', me?.keyExp ? 'set' : '-'],
        ['served_apps', snap.servedApps().join(' ') || '-'],
        ['nodes', snap.nodeCount],
        ['apps', snap.appCount],
        ['kv', [...snap.kvs()].length],
        ['min_compress_size', snap.minCompressSize],
        ['connecting_timeout', snap.connectingTimeoutSec],
        ['retry_connect_timeval', snap.retryConnectTimevalSec],
      ]));
      return 0;
    }
    case 'nodes': {
      const rows: (string | number)[][] = [];
      for (const n of snap.nodes()) {
        const key = n.keyExp ? 'set' : '-';
        const rot = n.newKeyEnableAt > 0 || n.oldKeyDisableAt > 0 ? `${epoch(n.newKeyEnableAt)} / ${epoch(n.oldKeyDisableAt)}` : '-';
        if (n.hosts.length === 0) rows.push([n.name, n.invalid ? 1 : 0, '-', '-', '-', key, rot]);
        for (const h of n.hosts) rows.push([n.name, n.invalid ? 1 : 0, h.ip, h.clientOnly ? -h.port : h.port, h.invalid ? 1 : 0, key, rot]);
      }
      out(formatTable(['node', 'invalid', 'ip', 'port', 'host_invalid', 'key', 'new_key_enable / old_key_disable'], rows));
      return 0;
    }
    case 'apps': {
      const served = new Set(snap.servedApps());
      out(formatTable(
        ['app', 'desc', 'bin', 'timeout', 'timeout2', 'server_node', 'invalid', 'served'],
        [...snap.apps()].map((a) => [a.app, a.desc || '-', a.bin, a.timeout, a.timeout2, a.serverNode || '-', a.invalid ? 1 : 0, served.has(a.app) ? 'yes' : '-']),
      ));
      return 0;
    }
    default: {
      const rows: (string | number)[][] = [];
      for (const n of snap.nodes()) for (const [k, v] of Object.entries(n.kv)) rows.push([n.name, k, v]);
      out(formatTable(['node', 'key', 'value'], rows));
      return 0;
    }
  }
}

void runCli(() => main(process.argv.slice(2)));
