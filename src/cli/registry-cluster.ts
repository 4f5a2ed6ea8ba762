/**
 * A scratch cluster run the real way, as SPEC §5.2 installs one: a registry home (`ibms -a init`, node keys made
 * with `ibpgenrsakeys`, the app packages in its so/), `ibms` started, the cluster defined through the registry's
 * admin API and distributed, then one home per host with `ibma -a init`, its node key, its agent (`ibma`) pulling
 * the node's view and packages from the registry, and on each server host an `ibas` platform reading the agent's
 * replica. Used by the demo (`npm start`) and the end-to-end tests. Every process runs in the foreground of its
 * own process group; `close()` stops them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RegistryClient } from '../registry/index.js';
import {
  EXAMPLE_APPS, cliPath, freePort, ibasConfText, runCliSync, startPlatform, stopPlatform, type ScratchApp, type ScratchCluster,
} from './scratch-cluster.js';

/** Options of {@link startRegistryCluster}. */
export interface RegistryClusterOptions {
  base: string;
  serverHosts?: number;
  workers?: number;
  apps?: ScratchApp[];
  clientNode?: string;
  serverNode?: string;
  /** KV entries of the server node (`add_node_kv`). */
  serverKv?: Record<string, string>;
  /** Progress lines (the demo prints them). */
  say?: (line: string) => void;
}

/** A running registry cluster. */
export interface RegistryCluster extends ScratchCluster {
  registryHome: string;
  registry: { ip: string; port: number; pid: number; workerPid: number };
  /** An admin client of the registry (token of its home). */
  admin: RegistryClient;
  /** The published version after the first distribute. */
  version: number;
  /** Stops platforms, agents and the registry (graceful, then SIGKILL of what is left); removes nothing. */
  close(): Promise<void>;
}

/** A daemon started with `--foreground` in its own process group. */
interface Daemon {
  child: ChildProcess;
  line: string;
  output(): string;
}

/**
 * Spawns `node <cli> args` in its own process group and waits for a stdout line matching `ready`. The child is
 * added to `started` at once, so a failure elsewhere still stops it.
 */
function startForeground(started: ChildProcess[], name: string, args: string[], ready: RegExp, timeoutMs = 60_000): Promise<Daemon> {
  const child = spawn(process.execPath, [cliPath(name), ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IBP_HOME: '' } });
  started.push(child);
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`${name} ${args.join(' ')}: not ready within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: string | null): void => {
      clearTimeout(timer);
      reject(new Error(`${name} ${args.join(' ')} exited (code ${code}, signal ${signal}) before it was ready:\n${out}`));
    };
    child.once('exit', onExit);
    let done = false;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = done ? undefined : out.split('\n').find((l) => ready.test(l));
      if (line === undefined) return;
      done = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({ child, line, output: () => out });
    });
  });
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** SIGTERM, wait for the exit (SIGKILL of the whole group after `killAfterMs`), then SIGKILL what is left of the group. */
async function stopDaemon(c: ChildProcess, killAfterMs = 20_000): Promise<void> {
  if (c.exitCode === null && c.signalCode === null) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => killGroup(c), killAfterMs);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      c.kill('SIGTERM');
    });
  }
  killGroup(c);
}

/** Lays out and starts the cluster; on any failure what was started is stopped before the error is thrown. */
export async function startRegistryCluster(o: RegistryClusterOptions): Promise<RegistryCluster> {
  const say = o.say ?? (() => undefined);
  const clientNode = o.clientNode ?? 'CORE';
  const serverNode = o.serverNode ?? 'ECIF';
  const apps = o.apps ?? EXAMPLE_APPS;
  rmSync(o.base, { recursive: true, force: true });
  mkdirSync(o.base, { recursive: true });
  const registryHome = join(o.base, 'registry');
  const clientHome = join(o.base, 'client');
  const ports: number[] = [];
  for (let i = 0; i < (o.serverHosts ?? 1); i++) ports.push(await freePort());
  const serverHomes = ports.map((_, i) => join(o.base, `server${i + 1}`));
  /** ibms first, then the agents. */
  const daemons: ChildProcess[] = [];
  const platforms: ChildProcess[] = [];
  let admin: RegistryClient | undefined;
  const close = async (): Promise<void> => {
    admin?.close();
    await Promise.all(platforms.map((p) => stopPlatform(p, 20_000)));
    // agents first, then the registry
    await Promise.all(daemons.slice(1).map((d) => stopDaemon(d)));
    if (daemons[0]) await stopDaemon(daemons[0]);
  };
  try {
    // 3. the register node: ibms -a init, node keys, packages in so/, ibms -a start
    runCliSync('ibms', ['-a', 'init', '--ip', '127.0.0.1', '--port', '0', '--home', registryHome], registryHome);
    for (const node of [serverNode, clientNode]) runCliSync('ibpgenrsakeys', [node, '--home', registryHome], registryHome);
    for (const a of apps) copyFileSync(a.source, join(registryHome, 'so', basename(a.source)));
    const ibms = await startForeground(daemons, 'ibms', ['-a', 'start', '--foreground', '--home', registryHome], /^ibms ready /);
    const m = /ip=(\S+) port=(\d+) pid=(\d+) worker=(\d+)/.exec(ibms.line)!;
    const registry = { ip: m[1]!, port: Number(m[2]), pid: Number(m[3]), workerPid: Number(m[4]) };
    say(`registry: ibms on ${registry.ip}:${registry.port} (monitor pid ${registry.pid}, worker pid ${registry.workerPid}), home ${registryHome}`);

    // 4-5. nodes, hosts, apps, a project, KV; distribute and save
    const token = readFileSync(join(registryHome, 'keys', 'ibms.admin.token'), 'utf8').trim();
    admin = new RegistryClient({ ip: registry.ip, port: registry.port, adminToken: token, timeoutMs: 30_000 });
    const apply = (cmd: Record<string, string>): Promise<unknown> => admin!.admin('POST', 'apply', cmd);
    await apply({ action: 'add_node', node: serverNode, key_exp: `${serverNode.toLowerCase()}-comm-key` });
    for (const p of ports) await apply({ action: 'add_node_host', node: serverNode, ip: '127.0.0.1', port: String(p) });
    await apply({ action: 'add_node', node: clientNode });
    await apply({ action: 'add_node_host', node: clientNode, ip: '127.0.0.1', port: '-10601' });
    for (const [key, value] of Object.entries(o.serverKv ?? {})) await apply({ action: 'add_node_kv', node: serverNode, key, value });
    for (const a of apps) {
      await apply({ action: 'add_app', app: a.app, desc: a.app, bin: basename(a.source), timeout: String(a.timeout ?? 60), timeout2: String(a.timeout2 ?? 0), server_node: serverNode });
    }
    await apply({ action: 'add_project', project: 'scratch', server_nodes: serverNode, client_nodes: clientNode, apps: apps.map((a) => a.app).join(' ') });
    const dist = await admin.admin<{ nodes: string[]; version: number }>('POST', 'distribute_config', {});
    await admin.admin('POST', 'save_config', {});
    say(`cluster defined through the admin API: node ${serverNode} (${ports.length} host(s)), node ${clientNode} (client-only), ${apps.length} app(s), project scratch; distributed version ${dist.version} to ${dist.nodes.join(' ')}; saved`);

    // 4. the comm nodes: a home per host (ibma -a init, the node's key), its agent, then ibas on the server hosts
    // (a client-only host is the agent's default --host; the server hosts share 127.0.0.1, so each names its own)
    const hosts = [
      { home: clientHome, node: clientNode, host: '127.0.0.1:-10601', args: [] as string[] },
      ...serverHomes.map((home, i) => ({ home, node: serverNode, host: `127.0.0.1:${ports[i]}`, args: ['--host', `127.0.0.1:${ports[i]}`] })),
    ];
    for (const h of hosts) {
      runCliSync('ibma', ['-a', 'init', '--this-node', h.node, '--ibms', `${registry.ip}:${registry.port}`, '--home', h.home], h.home);
      copyFileSync(join(registryHome, 'keys', `${h.node}.key`), join(h.home, 'keys', `${h.node}.key`));
    }
    const agents = await Promise.all(hosts.map((h) =>
      startForeground(daemons, 'ibma', ['-a', 'start', '--foreground', '--home', h.home, ...h.args], /^ibma ready node=/)));
    say(`agents: ${agents.map((a, i) => `${hosts[i]!.node}@${hosts[i]!.host} ${a.line.replace(/^ibma ready /, '')}`).join('; ')}`);
    for (const [i, home] of serverHomes.entries()) writeFileSync(join(home, 'etc', 'ibas.conf'), ibasConfText(ports[i]!, o.workers ?? 2));
    for (const home of serverHomes) platforms.push(await startPlatform(home));
    say(`platforms: ibas on ${ports.map((p) => `127.0.0.1:${p}`).join(' and ')} (${o.workers ?? 2} workers each), packages from the agent's so/`);
    return { base: o.base, clientHome, serverHomes, ports, clientNode, serverNode, registryHome, registry, admin, version: dist.version, close };
  } catch (err) {
    await close();
    throw err;
  }
}
