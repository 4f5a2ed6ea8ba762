#!/usr/bin/env node
/**
 * `npm start`: a working demo cluster on this machine. Under a scratch home (.demo/) it lays out a client node
 * CORE and a server node ECIF with two hosts (two ibas platforms on loopback), builds each host's local config,
 * starts the platforms, runs echo and file transactions over short and long connections, prints what happened,
 * and stays up until Ctrl-C with an ibpsend line and a curl line to try. `npm start -- --once` exits after the
 * transactions (exit code 0 only if all of them succeeded).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbacEnv } from '../client/index.js';
import { IbpError } from '../core/errors.js';
import { createTempFileName } from '../protocol/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
const once = process.argv.includes('--once');
const base = resolve(process.env.IBP_DEMO_DIR ?? join(repo, '.demo'));

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function ibmaConf(node: string): string {
  return `{
  "ibma" : {
    "this_node" : "${node}" ,
    "comm" : { "min_compress_size" : 16 } ,
    "log" : { "iblog_server" : "" , "event_output" : "file::log/event.log" ,
              "main_output" : "file::log/ibma_main.log" , "main_loglevel" : INFO ,
              "worker_output" : "file::log/ibma_worker.log" , "worker_loglevel" : INFO }
  } ,
  "ibac" : { "connecting_timeout" : 10 , "retry_connect_timeval" : 60 } ,
  "ibms" : { "server" : { "ip" : "127.0.0.1" , "port" : 16001 } }
}
`;
}

function ibasConf(port: number): string {
  return `{
  "ibas" : {
    "server" : { "ip" : "127.0.0.1" , "port" : ${port} } ,
    "mpm" : { "mode" : "STATIC_WORKERPOOL" , "max_count" : 2 ,
              "DYNAMIC_WORKERPOOL" : { "min_idle_count" : 1 , "max_idle_count" : 5 , "create_interval" : 1 ,
                                       "destroy_interval" : 10 , "max_process_count" : 10000 } } ,
    "security" : { "sign_flag" : 0 , "compress_flag" : 0 , "encrypt_flag" : 0 } ,
    "app" : { "max_so_cache_count" : 1000 } ,
    "log" : { "iblog_server" : "" , "event_output" : "file::log/event.log" ,
              "main_output" : "file::log/ibas_127.0.0.1-${port}_main.log" , "main_loglevel" : INFO ,
              "monitor_output" : "file::log/ibas_127.0.0.1-${port}_monitor.log" , "monitor_loglevel" : INFO ,
              "worker_output" : "file::log/ibas_127.0.0.1-${port}_worker_%d.log" , "worker_loglevel" : INFO ,
              "app_output" : "file::log/app_%s.log" , "app_loglevel" : INFO }
  } ,
  "ibma" : { "config_filename" : "ibma.conf" }
}
`;
}

function clusterFiles(ports: number[]): Record<string, string> {
  return {
    'ibp_nodes.conf': `{
  "nodes" : [
    { "node" : "ECIF" , "invalid" : "0" , "hosts" : [
        ${ports.map((p) => `{ "ip" : "127.0.0.1" , "port" : ${p} }`).join(' ,\n        ')} ] } ,
    { "node" : "CORE" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.1" , "port" : -10601 } ] }
  ]
}
`,
    'ibp_apps.conf': `{
  "apps" : [
    { "app" : "ibp_test_echo" , "desc" : "echo service" , "bin" : "ibp_test_echo.mjs" , "timeout" : "50" , "timeout2" : "0" , "invalid" : "0" , "server_node" : "ECIF" } ,
    { "app" : "ibp_test_file" , "desc" : "file echo service" , "bin" : "ibp_test_file.mjs" , "timeout" : "120" , "timeout2" : "0" , "invalid" : "0" , "server_node" : "ECIF" }
  ]
}
`,
    'ibp_projects.conf': `{
  "projects" : [
    { "project" : "echo_project" , "server_nodes" : "ECIF" , "client_nodes" : "CORE" , "apps" : "ibp_test_echo ibp_test_file" }
  ]
}
`,
  };
}

const cli = (name: string): string => join(repo, 'dist', 'src', 'cli', `${name}.js`);

function run(name: string, args: string[], home: string): void {
  const r = spawnSync(process.execPath, [cli(name), ...args], { env: { ...process.env, IBP_HOME: home }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
}

function startPlatform(home: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli('ibas'), '-a', 'start', '--foreground'], {
    env: { ...process.env, IBP_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((res, rej) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes(' ready on ')) {
        child.stdout!.off('data', onData);
        res(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => rej(new Error(`ibas in ${home} exited (code ${code}) before ready:\n${out}`)));
  });
}

function stopPlatform(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
}

async function main(): Promise<number> {
  rmSync(base, { recursive: true, force: true });
  const ports = [await freePort(), await freePort()];
  const core = join(base, 'core');
  const servers = ports.map((_, i) => join(base, `ecif${i + 1}`));
  const cluster = clusterFiles(ports);
  for (const [i, home] of [core, ...servers].entries()) {
    for (const d of ['etc', 'log', 'file', 'so', 'keys', 'run']) mkdirSync(join(home, d), { recursive: true });
    for (const [name, text] of Object.entries(cluster)) writeFileSync(join(home, 'etc', name), text);
    writeFileSync(join(home, 'etc', 'ibma.conf'), ibmaConf(i === 0 ? 'CORE' : 'ECIF'));
    if (i > 0) {
      writeFileSync(join(home, 'etc', 'ibas.conf'), ibasConf(ports[i - 1]!));
      for (const app of ['ibp_test_echo.mjs', 'ibp_test_file.mjs']) copyFileSync(join(repo, 'examples', 'so', app), join(home, 'so', app));
    }
    run('ibp', ['local-config', '--home', home], home);
  }
  console.log(`demo cluster under ${base}: client node CORE, server node ECIF on 127.0.0.1:${ports.join(' and 127.0.0.1:')}`);
  const platforms: ChildProcess[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(platforms.map(stopPlatform));
  };
  let failures = 0;
  try {
    for (const home of servers) platforms.push(await startPlatform(home));
    console.log('both ECIF platforms are ready (2 workers each)');
    const env = await IbacEnv.create({ home: core });
    try {
      const hosts = new Map<string, number>();
      const count = (r: { host: { ip: string; port: number } }): void => {
        const k = `${r.host.ip}:${r.host.port}`;
        hosts.set(k, (hosts.get(k) ?? 0) + 1);
      };
      for (let i = 0; i < 10; i++) {
        const r = await env.call('ibp_test_echo', { hello: 'IBP', seq: i });
        const back = r.json<{ seq: number }>();
        if (back.seq !== i) throw new Error(`echo ${i} came back as ${r.text()}`);
        count(r);
      }
      console.log(`10 echo transactions over short connections: all answered; hosts used: ${[...hosts].map(([h, n]) => `${h}×${n}`).join(', ')}`);
      const conn = await env.connect('ECIF');
      let t0 = performance.now();
      for (let i = 0; i < 200; i++) {
        const r = await conn.call('ibp_test_echo', `long-${i}`);
        if (r.text() !== `long-${i}`) throw new Error(`long echo ${i} came back as ${r.text()}`);
      }
      console.log(`200 echo transactions over one long connection to ${conn.host?.ip}:${conn.host?.port}: ${(200 / ((performance.now() - t0) / 1000)).toFixed(0)} tx/s`);
      await conn.close();
      const f1 = createTempFileName(join(core, 'file'), 'contract');
      const f2 = createTempFileName(join(core, 'file'), 'photo');
      writeFileSync(f1, 'contract text\n'.repeat(100));
      writeFileSync(f2, Buffer.alloc(200_000, 7));
      t0 = performance.now();
      const fr = await env.call('ibp_test_file', { want: 'files back' }, { files: [f1, f2] });
      console.log(`file transaction: sent 2 files, got ${fr.files.length} back in ${(performance.now() - t0).toFixed(1)} ms: ${fr.text()}`);
      for (const f of fr.files) console.log(`  response file ${f}`);
      if (fr.files.length !== 2) throw new Error('ibp_test_file should return 2 files');
    } catch (err) {
      failures++;
      console.error(`demo transaction failed: ${err instanceof IbpError ? `${err.code} (${err.commStatus ?? 'NOT_SENT'}) ${err.message}` : (err as Error).stack}`);
    } finally {
      await env.close();
    }
    const msgFile = join(base, 'hello.json');
    writeFileSync(msgFile, '{"hello":"from ibpsend"}\n');
    console.log('\ntry it yourself:');
    console.log(`  IBP_HOME=${core} node ${cli('ibpsend')} ECIF ibp_test_echo ${msgFile}`);
    console.log(`  curl -s -X POST --data '{"hello":"curl"}' http://127.0.0.1:${ports[0]}/ibp/ibp_test_echo`);
    if (once) return failures === 0 ? 0 : 1;
    console.log('\nthe cluster stays up: press Ctrl-C to stop it');
    await new Promise<void>((res) => {
      process.once('SIGINT', () => res());
      process.once('SIGTERM', () => res());
    });
    console.log('stopping...');
    return failures === 0 ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
