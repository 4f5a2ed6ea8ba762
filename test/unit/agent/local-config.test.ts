import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigReplica, readIndexVersion } from '../../../src/agent/index.js';
import { runLocalConfig, type LocalConfigIo } from '../../../src/cli/local-config.js';
import { tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));

// Written as the original's examples are: comments, bare words, numbers as strings, a missing comma.
const IBMA_CONF = (node: string) => `{
  "ibma" : {
    "this_node" : "${node}" , // this node
    "comm" : { "min_compress_size" : 512 } ,
    "log" : { "event_output" : "file::log/event.log" , "main_loglevel" : INFO }
  } ,
  "ibac" : {
    "connecting_timeout" : 7 // seconds
    "retry_connect_timeval" : 45 ,
  } ,
  "ibms" : { "server" : { "ip" : "127.0.0.9" , "port" : 16009 } }
}`;
const NODES_CONF = `{ "nodes" : [
  { "node" : "ECIF" , "invalid" : "0" , "key_exp" : "ecif-key" ,
    "hosts" : [ { "ip" : "127.0.0.2" , "port" : 18001 } , { "ip" : "127.0.0.2" , "port" : 18002 } ] ,
    "kv" : { "ecif_secret" : "s" } } ,
  { "node" : "CORE" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.3" , "port" : -18001 } ] ,
    "kv" : { "core_param" : "p" } } ,
  { "node" : "CRM" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.4" , "port" : 18001 } ] }
] }`;
const APPS_CONF = `{ "apps" : [
  { "app" : "ibp_test_echo" , "desc" : "echo" , "bin" : "ibp_test_echo.js" , "timeout" : "50" , "timeout2" : "0" , "server_node" : "ECIF" } ,
  { "app" : "crm_query" , "desc" : "crm" , "bin" : "crm_query.js" , "timeout" : "30" }
] }`;
const PROJECTS_CONF = `{ "projects" : [
  { "project" : "P1" , "server_nodes" : "ECIF" , "client_nodes" : "CORE" , "apps" : "ibp_test_echo" } ,
  { "project" : "P2" , "server_nodes" : "CRM" , "client_nodes" : "ECIF" , "apps" : "crm_query" }
] }`;

function makeHome(node = 'CORE'): string {
  const t = tempDir('ibp-home-');
  temps.push(t.cleanup);
  mkdirSync(join(t.dir, 'etc'));
  writeFileSync(join(t.dir, 'etc', 'ibma.conf'), IBMA_CONF(node));
  writeFileSync(join(t.dir, 'etc', 'ibp_nodes.conf'), NODES_CONF);
  writeFileSync(join(t.dir, 'etc', 'ibp_apps.conf'), APPS_CONF);
  writeFileSync(join(t.dir, 'etc', 'ibp_projects.conf'), PROJECTS_CONF);
  return t.dir;
}

function capture(): LocalConfigIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe('ibp local-config', () => {
  it('local-config - builds this node\'s replica from the home\'s config files', async () => {
    const home = makeHome('CORE');
    const io = capture();
    assert.equal(await runLocalConfig(['--home', home], {}, io), 0, io.stderr.join('\n'));
    assert.match(io.stdout[0] ?? '', /wrote snapshot 1 for node CORE .*2 node\(s\), 1 app\(s\) \(0 served\), 1 kv entry/);
    const s = ConfigReplica.open(join(home, 'run', 'ibma')).snapshot;
    assert.equal(s.thisNode, 'CORE');
    assert.deepEqual([...s.nodes()].map((n) => n.name), ['CORE', 'ECIF']);
    assert.equal(s.node('ECIF')?.keyExp, 'ecif-key');
    assert.equal(s.host('CORE', '127.0.0.3', 18001)?.clientOnly, true);
    assert.equal(s.app('ibp_test_echo')?.timeout, 50);
    assert.equal(s.app('crm_query'), undefined, 'CORE may not call CRM');
    assert.equal(s.kv('core_param'), 'p');
    assert.equal(s.minCompressSize, 512);
    assert.equal(s.connectingTimeoutSec, 7);
    assert.equal(s.retryConnectTimevalSec, 45);
    assert.deepEqual(s.ibmsServer, { ip: '127.0.0.9', port: 16009 });
  });

  it('local-config - $IBP_HOME is used, --this-node overrides ibma.conf, and old snapshots are pruned', async () => {
    const home = makeHome('CORE');
    const io = capture();
    for (let i = 0; i < 4; i++) assert.equal(await runLocalConfig(['--this-node', 'ECIF'], { IBP_HOME: home }, io), 0, io.stderr.join('\n'));
    const dir = join(home, 'run', 'ibma');
    assert.equal(readIndexVersion(dir), 4);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('snapshot-')).sort(), ['snapshot-2.json', 'snapshot-3.json', 'snapshot-4.json']);
    const s = ConfigReplica.open(dir).snapshot;
    assert.equal(s.thisNode, 'ECIF');
    assert.deepEqual(s.servedApps(), ['ibp_test_echo']);
    assert.ok(s.app('crm_query'));
    assert.ok(io.stdout.some((l) => /removed snapshot-1\.json/.test(l)));
  });

  it('local-config - -f names another ibma config in etc/', async () => {
    const home = makeHome('CORE');
    writeFileSync(join(home, 'etc', 'crm.conf'), IBMA_CONF('CRM'));
    const io = capture();
    assert.equal(await runLocalConfig(['local-config', '--home', home, '-f', 'crm.conf'], {}, io), 0, io.stderr.join('\n'));
    assert.equal(ConfigReplica.open(join(home, 'run', 'ibma')).snapshot.thisNode, 'CRM');
  });

  it('local-config - an unknown node fails with exit 1 and the coded error, writing nothing', async () => {
    const home = makeHome('CORE');
    const io = capture();
    assert.equal(await runLocalConfig(['--home', home, '--this-node', 'NOPE'], {}, io), 1);
    assert.match(io.stderr.join('\n'), /IBP_ERR_REPLICA_UNKNOWN_NODE/);
    assert.equal(readIndexVersion(join(home, 'run', 'ibma')), undefined);
  });

  it('local-config - a missing config file fails with exit 1', async () => {
    const home = makeHome('CORE');
    const io = capture();
    assert.equal(await runLocalConfig(['--home', home, '-f', 'missing.conf'], {}, io), 1);
    assert.match(io.stderr.join('\n'), /IBP_ERR_CONFIG_READ/);
  });

  it('local-config - bad usage exits 2 with the usage text; --help exits 0', async () => {
    const io = capture();
    assert.equal(await runLocalConfig(['--bogus'], {}, io), 2);
    assert.match(io.stderr.join('\n'), /usage: ibp local-config/);
    assert.equal(await runLocalConfig(['--keep', '-1'], {}, io), 2);
    const help = capture();
    assert.equal(await runLocalConfig(['--help'], {}, help), 0);
    assert.match(help.stdout.join('\n'), /--this-node/);
  });
});
