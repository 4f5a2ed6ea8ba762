#!/usr/bin/env node
/**
 * `npm start`: a working demo cluster on this machine. Under a scratch home (.demo/) it lays out a client node
 * CORE and a server node ECIF with two hosts (two ibas platforms on loopback), builds each host's local config,
 * starts the platforms, runs echo and file transactions over short and long connections, prints what happened,
 * and stays up until Ctrl-C with an ibpsend line and a curl line to try. `npm start -- --once` exits after the
 * transactions (exit code 0 only if all of them succeeded).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { IbacEnv } from '../client/index.js';
import { IbpError } from '../core/errors.js';
import { createTempFileName } from '../protocol/index.js';
import { REPO_ROOT, cliPath, startPlatform, stopPlatform, writeScratchCluster } from './scratch-cluster.js';

const once = process.argv.includes('--once');
const base = resolve(process.env.IBP_DEMO_DIR ?? join(REPO_ROOT, '.demo'));

async function main(): Promise<number> {
  const cluster = await writeScratchCluster({ base, serverHosts: 2, workers: 2 });
  const { ports, clientHome: core, serverHomes: servers } = cluster;
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
    console.log(`  IBP_HOME=${core} node ${cliPath('ibpsend')} ECIF ibp_test_echo ${msgFile}`);
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
