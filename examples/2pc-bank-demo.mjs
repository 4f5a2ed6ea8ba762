#!/usr/bin/env node
// Two-phase commit demo (docs/2pc.md): a money transfer between accounts kept in two SQLite databases, one on
// each of two server nodes (BANKA, BANKB: real `ibas` platforms on this machine running so/ibp_bank_transfer.mjs),
// coordinated by the client library's runTwoPhase in this process.
//
//   npm run build && node examples/2pc-bank-demo.mjs [--keep]
//
// It shows: a transfer that commits; one that a participant refuses (both roll back); a coordinator that is
// killed right after logging its decision (both banks stay prepared, `ibp 2pc status` shows it) and
// `ibp 2pc recover` finishing it. Every step prints both balances and their sum. The homes are made in a
// temporary directory and removed at the end (--keep leaves them, and the platforms stopped, for a look).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, cliPath, removeScratch, runCliSync, startPlatform, stopPlatform, writeScratchCluster } from '../dist/src/cli/scratch-cluster.js';
import { IbacEnv, runTwoPhase } from '../dist/src/client/index.js';

const APP = 'ibp_bank_transfer';
const BANK = { app: APP, source: join(REPO_ROOT, 'examples', 'so', 'ibp_bank_transfer.mjs'), timeout: 20 };

// `node 2pc-bank-demo.mjs --coordinator HOME JSON`: the coordinator of step 3, in a process of its own.
if (process.argv[2] === '--coordinator') {
  const env = await IbacEnv.create({ home: process.argv[3] });
  const { legs, xid } = JSON.parse(process.argv[4]);
  const r = await runTwoPhase(env, legs, { xid });
  await env.close();
  console.log(JSON.stringify(r.outcome));
  process.exit(0);
}

const base = mkdtempSync(join(tmpdir(), 'ibp-2pc-demo-'));
const platforms = [];
let env;
try {
  // Two server nodes, each a platform with its own home (and so its own file/bank.db).
  const a = await writeScratchCluster({ base: join(base, 'a'), serverNode: 'BANKA', clientNode: 'CORE', apps: [BANK], workers: 2 });
  const b = await writeScratchCluster({ base: join(base, 'b'), serverNode: 'BANKB', clientNode: 'CORE', apps: [BANK], workers: 2 });
  // The coordinator's home (node CORE, client only) sees both nodes.
  const home = a.clientHome;
  const node = (n, port) => `{ "node" : "${n}" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.1" , "port" : ${port} } ] }`;
  writeFileSync(join(home, 'etc', 'ibp_nodes.conf'), `{ "nodes" : [ ${node('BANKA', a.ports[0])} , ${node('BANKB', b.ports[0])} , ${node('CORE', -10601)} ] }\n`);
  writeFileSync(join(home, 'etc', 'ibp_apps.conf'), `{ "apps" : [ { "app" : "${APP}" , "desc" : "bank" , "bin" : "ibp_bank_transfer.mjs" , "timeout" : "20" , "timeout2" : "0" , "invalid" : "0" , "server_node" : "BANKA" } ] }\n`);
  writeFileSync(join(home, 'etc', 'ibp_projects.conf'), `{ "projects" : [ { "project" : "bank" , "server_nodes" : "BANKA BANKB" , "client_nodes" : "CORE" , "apps" : "${APP}" } ] }\n`);
  runCliSync('ibp', ['local-config', '--home', home], home);
  // better-sqlite3 is a native module outside so/: the platforms find it through NODE_PATH.
  for (const h of [a.serverHomes[0], b.serverHomes[0]]) platforms.push(await startPlatform(h, { NODE_PATH: join(REPO_ROOT, 'node_modules') }));

  env = await IbacEnv.create({ home });
  await env.call(APP, { op: 'open', account: 'alice', balance: 1000 }, { node: 'BANKA' });
  await env.call(APP, { op: 'open', account: 'bob', balance: 1000 }, { node: 'BANKB' });
  const balances = async (what) => {
    const alice = (await env.call(APP, { op: 'balance', account: 'alice' }, { node: 'BANKA' })).json();
    const bob = (await env.call(APP, { op: 'balance', account: 'bob' }, { node: 'BANKB' })).json();
    console.log(`${what.padEnd(46)} alice@BANKA ${alice.balance} (held ${alice.held})  bob@BANKB ${bob.balance} (held ${bob.held})  sum ${alice.balance + bob.balance}`);
  };
  const legs = (amount) => [
    { node: 'BANKA', app: APP, message: { account: 'alice', delta: -amount } },
    { node: 'BANKB', app: APP, message: { account: 'bob', delta: amount } },
  ];
  await balances('start');

  const r1 = await runTwoPhase(env, legs(100));
  await balances(`1. transfer 100: ${r1.outcome}`);

  const r2 = await runTwoPhase(env, legs(5000));
  await balances(`2. transfer 5000: ${r2.outcome} (${r2.results[0].prepare.error?.message.split(': ').pop()})`);

  // 3. The coordinator dies right after writing its decision (commit) to file/2pc/, before phase two.
  const xid = `DEMO-${Date.now().toString(36)}`;
  const self = fileURLToPath(import.meta.url);
  await new Promise((res) => spawn(process.execPath, [self, '--coordinator', home, JSON.stringify({ legs: legs(250), xid })], { stdio: 'inherit', env: { ...process.env, IBP_2PC_FAULT: 'after_decision' } }).once('exit', res));
  await balances('3. coordinator killed after its decision');
  const ibp2pc = (h, ...args) => spawnSync(process.execPath, [cliPath('ibp'), '2pc', ...args, '--home', h], { encoding: 'utf8' });
  console.log(`\n$ ibp 2pc status --xid ${xid} --home ${home}   (the coordinator's home)\n${ibp2pc(home, 'status', '--xid', xid).stdout}`);
  console.log(`$ ibp 2pc status --home ${a.serverHomes[0]}   (BANKA's home)\n${ibp2pc(a.serverHomes[0], 'status').stdout}`);
  const rec = ibp2pc(home, 'recover');
  console.log(`$ ibp 2pc recover --home ${home}   (exit ${rec.status})\n${rec.stdout}${rec.stderr}`);
  await balances('4. after ibp 2pc recover');
} finally {
  await env?.close();
  await Promise.all(platforms.map((p) => stopPlatform(p)));
  if (process.argv.includes('--keep')) console.log(`homes kept in ${base}`);
  else removeScratch(base);
}
