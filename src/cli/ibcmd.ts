#!/usr/bin/env node
/** `ibcmd`: the remote command agent's command line (SPEC §2.6): the agent (init, start, stop, status) and its client. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError, type IbpErrorData } from '../core/errors.js';
import { initHomeDirs, type IbpHome } from '../core/home.js';
import { parseLogOutput } from '../core/log.js';
import { defaultIbcmdConfText, loadIbcmdConf } from '../core/config/index.js';
import {
  CommandAudit, createSecretFile, parseAgentAddress, RcmdClient, resolveRcmdSettings, runRcmdDaemon, runningRcmdAddress, runningRcmdPid,
  type RcmdSettings,
} from '../rcmd/index.js';
import { configPath, homeFrom, parseCommandLine, runCli } from './args.js';

const USAGE = `usage: ibcmd -a init [--ip IP] [--port PORT]           create etc/ log/ file/ so/ keys/ run/, etc/ibcmd.conf and keys/ibcmd.secret (0600)
       ibcmd [-f ibcmd.conf] -a start [--foreground]   start the agent (daemon; --foreground stays attached)
       ibcmd [-f ibcmd.conf] -a stop                   graceful stop (requests in flight finish)
       ibcmd [-f ibcmd.conf] -s status                 whether the agent of this home runs
       ibcmd [-f ibcmd.conf] -a check --cmd "CMD"      audit CMD against this home's lists; runs nothing
       ibcmd --ip IP --port PORT -a execmd --cmd "CMD" [--timeout S]
                                                      run CMD on the agent, print its output, exit with its exit code
       ibcmd --ip IP --port PORT -a putfile --file F [--to REMOTE]
                                                      upload F to the same path (or REMOTE) under the agent's home
       ibcmd --ip IP --port PORT -a getfile --file F [--to LOCAL]
                                                      download F (under the agent's home) to F (or LOCAL)
client: --secret-file PATH (default keys/ibcmd.secret of the home); without --ip/--port the address in etc/ibcmd.conf
execmd exit codes: the command's; 124 time limit; 125 output limit; 126 refused; 127 could not start; 128+N signal N
options: --home DIR (default $IBP_HOME, else $HOME); a bare -f name is looked up in $HOME/etc`;

const DAEMON_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'rcmd', 'daemon-main.js');
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

async function main(argv: string[]): Promise<number> {
  const { values: v } = parseCommandLine(argv, {
    f: { type: 'string', short: 'f' },
    a: { type: 'string', short: 'a' },
    s: { type: 'string', short: 's' },
    home: { type: 'string' },
    foreground: { type: 'boolean' },
    ip: { type: 'string' },
    port: { type: 'string' },
    cmd: { type: 'string' },
    file: { type: 'string' },
    to: { type: 'string' },
    timeout: { type: 'string' },
    'secret-file': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, USAGE);
  if (v.help || (!v.a && !v.s)) {
    process.stdout.write(`${USAGE}\n`);
    return v.help ? 0 : 2;
  }
  const home = homeFrom(v.home);
  const confPath = configPath(home, v.f ?? 'ibcmd.conf');
  const settings = (): RcmdSettings => resolveRcmdSettings(loadIbcmdConf(confPath), home.root, confPath);
  if (v.s !== undefined) {
    if (v.s !== 'status') throw new IbpError('IBP_ERR_USAGE', `unknown show -s ${v.s}\n\n${USAGE}`);
    return status(settings());
  }
  switch (v.a) {
    case 'init':
      return init(home, v.ip ?? '127.0.0.1', v.port ?? '26001');
    case 'start':
      return v.foreground ? startForeground(settings()) : startDaemon(settings());
    case 'stop':
      return stop(settings());
    case 'check':
      return check(settings(), need(v.cmd, '--cmd'));
    case 'execmd':
    case 'putfile':
    case 'getfile': {
      const client = new RcmdClient({ ...clientAddress(home, v.ip, v.port, confPath), secretPath: resolve(v['secret-file'] ?? join(home.keys, 'ibcmd.secret')) });
      try {
        if (v.a === 'execmd') return await execmd(client, need(v.cmd, '--cmd'), v.timeout);
        const file = need(v.file, '--file');
        if (v.a === 'putfile') {
          const r = await client.putFile(resolve(file), v.to ?? file);
          process.stdout.write(`putfile ${file} -> ${client.address}:${r.path} (${r.size} bytes, sha256 ${r.sha256})\n`);
        } else {
          const local = resolve(v.to ?? file);
          mkdirSync(dirname(local), { recursive: true });
          const r = await client.getFileTo(file, local);
          process.stdout.write(`getfile ${client.address}:${r.path} -> ${local} (${r.size} bytes, sha256 ${r.sha256})\n`);
        }
        return 0;
      } finally {
        await client.close();
      }
    }
    default:
      throw new IbpError('IBP_ERR_USAGE', `unknown action -a ${String(v.a)}\n\n${USAGE}`);
  }
}

function need(value: string | undefined, flag: string): string {
  if (value === undefined || value.length === 0) throw new IbpError('IBP_ERR_USAGE', `${flag} is required for this action\n\n${USAGE}`);
  return value;
}

/** --ip/--port, else the listen address in this home's ibcmd.conf. */
function clientAddress(home: IbpHome, ip: string | undefined, portText: string | undefined, confPath: string): { host: string; port: number } {
  let host = ip;
  let port = portText !== undefined ? Number(portText) : undefined;
  if ((host === undefined || port === undefined) && existsSync(confPath)) {
    // the local agent: its bound address when it runs (the config may say port 0), else the config's
    const s = resolveRcmdSettings(loadIbcmdConf(confPath), home.root, confPath);
    const bound = runningRcmdAddress(s.pidPath);
    const a = bound !== undefined ? parseAgentAddress(bound) : { host: s.ip, port: s.port };
    host ??= a.host === '0.0.0.0' ? '127.0.0.1' : a.host;
    port ??= a.port;
  }
  if (host === undefined || port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new IbpError('IBP_ERR_USAGE', `give the agent as --ip IP --port PORT (1..65535)\n\n${USAGE}`);
  }
  return { host, port };
}

async function execmd(client: RcmdClient, cmd: string, timeoutText: string | undefined): Promise<number> {
  const timeoutS = timeoutText !== undefined ? Number(timeoutText) : undefined;
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new IbpError('IBP_ERR_USAGE', `--timeout ${timeoutText}: expected seconds > 0`);
  try {
    const r = await client.execCommand(cmd, {
      ...(timeoutS !== undefined ? { timeoutMs: Math.round(timeoutS * 1000) } : {}),
      onOutput: (stream, chunk) => (stream === 'stdout' ? process.stdout : process.stderr).write(chunk),
    });
    if (r.timedOut) {
      process.stderr.write(`ibcmd: the agent stopped the command at its time limit (${r.durationMs} ms)\n`);
      return 124;
    }
    if (r.outputLimited) {
      process.stderr.write('ibcmd: the agent stopped the command at its output limit; the output above is cut\n');
      return 125;
    }
    if (r.exitCode !== null) return r.exitCode;
    return 128 + (SIGNALS[r.signal ?? ''] ?? 0);
  } catch (err) {
    if (err instanceof IbpError && (err.code === 'IBP_ERR_RCMD_COMMAND_REFUSED' || err.code === 'IBP_ERR_RCMD_EXEC_FAILED')) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      return err.code === 'IBP_ERR_RCMD_COMMAND_REFUSED' ? 126 : 127;
    }
    throw err;
  }
}

function check(s: RcmdSettings, cmd: string): number {
  const verdict = new CommandAudit({ blacklist: s.blacklist, whitelist: s.whitelist, allowNonAscii: s.allowNonAscii }).check(cmd);
  if (verdict.allowed) {
    process.stdout.write(`allowed by whitelist entry ${JSON.stringify(verdict.rule)}: argv ${JSON.stringify(verdict.argv)}\n`);
    return 0;
  }
  process.stdout.write(`refused by the ${verdict.stage} check: ${verdict.reason}\n`);
  return 126;
}

function init(home: IbpHome, ip: string, portText: string): number {
  const port = Number(portText);
  if (!/^[0-9]+$/.test(portText) || port > 65535) throw new IbpError('IBP_ERR_USAGE', `--port ${portText}: expected 0..65535`);
  const { created, existed } = initHomeDirs(home);
  for (const d of created) process.stdout.write(`created ${d}\n`);
  for (const d of existed) process.stdout.write(`warning: ${d} already exists\n`);
  const conf = join(home.etc, 'ibcmd.conf');
  if (existsSync(conf)) process.stdout.write(`warning: ${conf} already exists, left as it is\n`);
  else {
    writeFileSync(conf, defaultIbcmdConfText({ ip, port }));
    process.stdout.write(`created ${conf}\n`);
  }
  const secret = join(home.keys, 'ibcmd.secret');
  if (createSecretFile(secret)) process.stdout.write(`created ${secret} (mode 0600)\n`);
  else process.stdout.write(`warning: ${secret} already exists, left as it is\n`);
  process.stdout.write('next: edit exec.whitelist in etc/ibcmd.conf, copy keys/ibcmd.secret (mode 0600) to each peer allowed to use this agent, then ibcmd -a start\n');
  return 0;
}

async function startForeground(s: RcmdSettings): Promise<number> {
  const d = await runRcmdDaemon(s);
  process.stdout.write(`ibcmd ready on ${d.address.ip}:${d.address.port} (pid ${process.pid})\n`);
  await d.done;
  return 0;
}

async function startDaemon(s: RcmdSettings): Promise<number> {
  const pid = runningRcmdPid(s.pidPath);
  if (pid !== undefined) throw new IbpError('IBP_ERR_RCMD_ALREADY_RUNNING', `ibcmd is already running for ${s.homeRoot} (pid ${pid})`);
  // the daemon's own stdout/stderr (a crash trace) go to the main log, never to our terminal
  const main = parseLogOutput(s.mainOutput, s.homeRoot);
  let outFd: number | 'ignore' = 'ignore';
  if (main.kind === 'file') {
    mkdirSync(dirname(main.path), { recursive: true });
    outFd = openSync(main.path, 'a');
  }
  const child = spawn(process.execPath, [DAEMON_MAIN], {
    detached: true,
    cwd: s.homeRoot,
    stdio: ['ignore', outFd, outFd, 'ipc'],
    env: { ...process.env, IBP_RCMD: JSON.stringify(s) },
  });
  const outcome = await new Promise<{ type: string; pid?: number; ip?: string; port?: number; error?: IbpErrorData }>((res) => {
    child.once('message', (m) => res(m as { type: string }));
    child.once('exit', (code, signal) => res({ type: 'failed', error: { code: 'IBP_ERR_RCMD_START', message: `the agent exited (code ${code}, signal ${signal}) before it was ready` } }));
  });
  if (typeof outFd === 'number') closeSync(outFd);
  if (outcome.type !== 'ready') throw IbpError.fromJSON(outcome.error);
  child.unref();
  child.disconnect?.();
  process.stdout.write(`ibcmd started on ${outcome.ip}:${outcome.port} (pid ${outcome.pid})\n`);
  return 0;
}

async function stop(s: RcmdSettings): Promise<number> {
  const pid = runningRcmdPid(s.pidPath);
  if (pid === undefined) throw new IbpError('IBP_ERR_RCMD_NOT_RUNNING', `ibcmd is not running for ${s.homeRoot} (no live pid in ${s.pidPath})`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      process.stdout.write(`ibcmd stopped (pid ${pid})\n`);
      return 0;
    }
  }
  process.stderr.write(`ibcmd (pid ${pid}) did not stop within 30 s\n`);
  return 1;
}

function status(s: RcmdSettings): number {
  const pid = runningRcmdPid(s.pidPath);
  const at = runningRcmdAddress(s.pidPath) ?? `${s.ip}:${s.port}`;
  process.stdout.write(pid === undefined ? `ibcmd is not running for ${s.homeRoot}\n` : `ibcmd is running for ${s.homeRoot} (pid ${pid}) on ${at}\n`);
  return pid === undefined ? 1 : 0;
}

void runCli(() => main(process.argv.slice(2)));
