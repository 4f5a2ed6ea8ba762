#!/usr/bin/env node
/**
 * `npm start`: a working demo cluster on this machine, installed the way SPEC §5.2 does it. Under a scratch
 * directory (.demo/) it makes a registry home (`ibms -a init`, node keys with `ibpgenrsakeys`, the example
 * packages in its so/), starts `ibms`, defines the cluster through the registry's admin API (a client node CORE,
 * a server node ECIF with two hosts, the echo and file apps, a project) and distributes it; then gives each host
 * a home with `ibma -a init` and its node key, starts an agent per host (it pulls the node's view and packages
 * from the registry) and an `ibas` platform on each ECIF host (reading its agent's replica). It runs echo and file
 * transactions over short and long connections, shows the registry's sessions, prints what happened and stays up
 * until Ctrl-C with ibpsend, curl and ibms lines to try. `npm start -- --once` exits after the transactions
 * (exit code 0 only if all of them succeeded).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IbacEnv } from '../client/index.js';
import { IbpError } from '../core/errors.js';
import { createTempFileName } from '../protocol/index.js';
import type { SessionRow } from '../registry/index.js';
import { formatRows } from './ibms-admin.js';
import { startRegistryCluster, type RegistryCluster } from './registry-cluster.js';
import { REPO_ROOT, cliPath } from './scratch-cluster.js';

const once = process.argv.includes('--once');
const base = resolve(process.env.IBP_DEMO_DIR ?? join(REPO_ROOT, '.demo'));

async function main(): Promise<number> {
  console.log(`demo cluster under ${base}: registry, client node CORE, server node ECIF with two hosts`);
  const cluster: RegistryCluster = await startRegistryCluster({ base, serverHosts: 2, workers: 2, say: (l) => console.log(l) });
  const { ports, clientHome: core, registryHome } = cluster;
  let failures = 0;
  try {
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
    // the platforms registered with the registry (heartbeats); the agents long-poll it
    const sessions = await waitForSessions(cluster, ports.length);
    console.log(`\nibms -s sessions:\n${formatRows('sessions', sessions as unknown as Record<string, unknown>[])}`);
    if (sessions.filter((r) => r.role === 'ibas').length < ports.length) {
      failures++;
      console.error('demo: the platforms did not show in ibms -s sessions');
    }
    const msgFile = join(base, 'hello.json');
    writeFileSync(msgFile, '{"hello":"from ibpsend"}\n');
    console.log('\ntry it yourself:');
    console.log(`  IBP_HOME=${core} node ${cliPath('ibpsend')} ECIF ibp_test_echo ${msgFile}`);
    console.log(`  curl -s -X POST --data '{"hello":"curl"}' http://127.0.0.1:${ports[0]}/ibp/ibp_test_echo`);
    console.log(`  IBP_HOME=${registryHome} node ${cliPath('ibms')} -s sessions   # also -s nodes | apps | projects | nodes_kv`);
    console.log(`  IBP_HOME=${core} node ${cliPath('ibma')} -s nodes   # the client's local replica`);
    console.log(`  IBP_HOME=${registryHome} node ${cliPath('ibms')} -a add_node_kv --node ECIF --key hsm --value on && \\\n    IBP_HOME=${registryHome} node ${cliPath('ibms')} -a distribute_config   # a change reaches every agent at once`);
    if (once) return failures === 0 ? 0 : 1;
    console.log('\nthe cluster stays up: press Ctrl-C to stop it');
    await new Promise<void>((res) => {
      process.once('SIGINT', () => res());
      process.once('SIGTERM', () => res());
    });
    console.log('stopping...');
    return failures === 0 ? 0 : 1;
  } finally {
    await cluster.close();
  }
}

/** The registry's sessions once `platforms` ibas rows show (bounded wait: the first heartbeat is sent at start). */
async function waitForSessions(c: RegistryCluster, platforms: number): Promise<SessionRow[]> {
  const end = Date.now() + 15_000;
  for (;;) {
    const { rows } = await c.admin.admin<{ rows: SessionRow[] }>('GET', 'sessions');
    if (rows.filter((r) => r.role === 'ibas').length >= platforms || Date.now() > end) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
