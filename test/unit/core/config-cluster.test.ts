import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError, type ErrorCode } from '../../../src/core/errors.js';
import type { ClusterConfig } from '../../../src/core/cluster-model.js';
import {
  defaultClusterConfTexts, formatClusterConfig, loadClusterConfig, parseClusterConfig, parseNodesConf, validateClusterConfig,
} from '../../../src/core/config/index.js';

const SEED = fileURLToPath(new URL('../../../../test/fixtures/config/seed/', import.meta.url));

function configError(fn: () => unknown, code: ErrorCode, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IbpError, String(err));
    assert.equal(err.code, code, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `${err.message}\nshould include: ${f}`);
    return true;
  });
}

const NODES = `{ "nodes" : [
  { "node" : "ECIF" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.2" , "port" : 18001 } ] } ,
  { "node" : "CORE" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.3" , "port" : -18001 } ] }
] }`;
const APPS = `{ "apps" : [
  { "app" : "echo" , "desc" : "echo" , "bin" : "echo.js" , "timeout" : "50" , "timeout2" : "0" , "invalid" : "0" }
] }`;
const PROJECTS = `{ "projects" : [
  { "project" : "p" , "server_nodes" : "ECIF" , "client_nodes" : "CORE" , "apps" : "echo" }
] }`;

function cluster(over: { nodes?: string; apps?: string; projects?: string } = {}): ClusterConfig {
  return parseClusterConfig({
    nodes: { text: over.nodes ?? NODES, fileName: 'ibp_nodes.conf' },
    apps: { text: over.apps ?? APPS, fileName: 'ibp_apps.conf' },
    projects: { text: over.projects ?? PROJECTS, fileName: 'ibp_projects.conf' },
  });
}

test('cluster config - the three seed examples load verbatim (elisions and unclosed arrays included)', () => {
  const c = loadClusterConfig(SEED);
  assert.deepEqual(c.nodes.map((n) => n.node), ['ECIF', 'CORE']);
  assert.deepEqual(c.nodes[0]?.hosts.map((h) => `${h.ip}:${h.port}`), ['158.1.0.56:18001', '158.1.0.57:18001', '158.1.0.58:18001']);
  assert.deepEqual(c.nodes[1], { node: 'CORE', invalid: false, hosts: [{ ip: '66.88.1.10', port: 10601, clientOnly: false, invalid: false }], keyExp: '', kv: {} });
  assert.deepEqual(c.apps[0], { app: 'ibp_test_echo', desc: '测试报文回射服务', bin: 'ibp_test_echo.so', timeout: 50, timeout2: 0, serverNode: '', invalid: false });
  assert.equal(c.apps[1]?.timeout, 120);
  assert.deepEqual(c.projects, [{ project: 'echo_project', serverNodes: ['ECIF'], clientNodes: ['CORE'], apps: ['ibp_test_echo', 'ibp_test_file'] }]);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.nodes[0]?.hosts[0]));
});

test('cluster config - a negative port marks a client-only host and keeps the absolute value', () => {
  const c = cluster();
  assert.deepEqual(c.nodes[1]?.hosts[0], { ip: '127.0.0.3', port: 18001, clientOnly: true, invalid: false });
  assert.equal(c.nodes[0]?.hosts[0]?.clientOnly, false);
});

test('cluster config - key_exp and kv in both accepted forms', () => {
  const nodes = parseNodesConf(`{ "nodes" : [
    { "node" : "A" , "key_exp" : "abc" , "kv" : { "hsm_ip" : "10.0.0.9" , "hsm_port" : 1500 } } ,
    { "node" : "B" , "kv" : [ { "key" : "k1" , "value" : "v1" } , { "key" : "k2" , "value" : "v2" } ] }
  ] }`, 'ibp_nodes.conf');
  assert.equal(nodes[0]?.keyExp, 'abc');
  assert.deepEqual(nodes[0]?.kv, { hsm_ip: '10.0.0.9', hsm_port: '1500' });
  assert.deepEqual(nodes[1]?.kv, { k1: 'v1', k2: 'v2' });
  assert.equal(nodes[1]?.keyExp, '');
  configError(() => parseNodesConf('{ "nodes" : [ { "node" : "A" , "kv" : [ { "key" : "k" , "value" : "1" } , { "key" : "k" , "value" : "2" } ] } ] }', 'n.conf'),
    'IBP_ERR_CONFIG_INVALID', 'nodes[0].kv[1].key', '"k" repeats');
  configError(() => parseNodesConf('{ "nodes" : [ { "node" : "A" , "kv" : [ { "key" : "k" , "val" : "1" } ] } ] }', 'n.conf'),
    'IBP_ERR_CONFIG_UNKNOWN_KEY', 'unknown key nodes[0].kv[0].val');
  configError(() => parseNodesConf('{ "nodes" : [ { "node" : "A" , "kv" : { "k" : { } } } ] }', 'n.conf'),
    'IBP_ERR_CONFIG_INVALID', 'nodes[0].kv.k: got an object, expected a string');
});

test('cluster config - project lists: apps split on spaces, nodes on spaces or commas', () => {
  const c = cluster({
    nodes: '{ "nodes" : [ { "node" : "A" } , { "node" : "B" } , { "node" : "C" } ] }',
    apps: '{ "apps" : [ { "app" : "x" , "bin" : "x.js" , "timeout" : 1 } , { "app" : "y" , "bin" : "y.js" , "timeout" : 1 } ] }',
    projects: '{ "projects" : [ { "project" : "p" , "server_nodes" : "A, B" , "client_nodes" : "B,C  A" , "apps" : " x  y " } ] }',
  });
  assert.deepEqual(c.projects[0], { project: 'p', serverNodes: ['A', 'B'], clientNodes: ['B', 'C', 'A'], apps: ['x', 'y'] });
});

test('cluster config - cross-references: unknown node or app in a project, pointing at the file position', () => {
  configError(() => cluster({ projects: '{ "projects" : [\n { "project" : "p" , "server_nodes" : "ECIF NOPE" , "client_nodes" : "CORE" , "apps" : "echo" } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'ibp_projects.conf:2:39: project "p": server_nodes names unknown node "NOPE"');
  configError(() => cluster({ projects: '{ "projects" : [ { "project" : "p" , "client_nodes" : "GHOST" , "apps" : "echo missing" } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'client_nodes names unknown node "GHOST"', 'project "p": apps names unknown app "missing"');
});

test('cluster config - duplicate node names, app codes and host addresses are named', () => {
  configError(() => cluster({ nodes: '{ "nodes" : [ { "node" : "ECIF" } , { "node" : "CORE" } , { "node" : "ECIF" } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'duplicate node "ECIF" (also nodes[0])');
  configError(() => cluster({ apps: '{ "apps" : [ { "app" : "echo" , "bin" : "a" , "timeout" : 1 } , { "app" : "echo" , "bin" : "b" , "timeout" : 1 } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'duplicate app "echo" (also apps[0])');
  configError(() => cluster({
    nodes: '{ "nodes" : [ { "node" : "ECIF" , "hosts" : [ { "ip" : "127.0.0.2" , "port" : 1 } ] } , { "node" : "CORE" , "hosts" : [ { "ip" : "127.0.0.2" , "port" : -1 } ] } ] }',
  }), 'IBP_ERR_CONFIG_INVALID', 'duplicate host 127.0.0.2:1 in node "CORE" (already a host of node "ECIF")');
});

test('cluster config - app timeouts: timeout must be > 0, timeout2 >= 0', () => {
  configError(() => cluster({ apps: '{ "apps" : [ { "app" : "echo" , "bin" : "a" , "timeout" : "0" } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'app "echo": timeout must be > 0 seconds, got 0');
  configError(() => cluster({ apps: '{ "apps" : [ { "app" : "echo" , "bin" : "a" , "timeout" : 5 , "timeout2" : -1 } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'app "echo": timeout2 must be >= 0');
  configError(() => cluster({ apps: '{ "apps" : [ { "app" : "echo" , "bin" : "a" , "timeout" : 5 , "server_node" : "X" } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'app "echo": server_node names unknown node "X"');
});

test('cluster config - schema errors: bad port, missing bin, unknown key', () => {
  configError(() => cluster({ nodes: '{ "nodes" : [ { "node" : "ECIF" , "hosts" : [ { "ip" : "1.2.3.4" , "port" : 0 } ] } ] }' }),
    'IBP_ERR_CONFIG_INVALID', 'nodes[0].hosts[0].port: got 0, expected an integer from 1 to 65535, or from -65535 to -1');
  configError(() => cluster({ apps: '{ "apps" : [ { "app" : "echo" , "timeout" : 5 } ] }' }), 'IBP_ERR_CONFIG_INVALID', 'apps[0].bin: missing');
  configError(() => cluster({ apps: '{ "apps" : [ { "app" : "echo" , "bin" : "a" , "timeout" : 5 , "timout2" : 1 } ] }' }),
    'IBP_ERR_CONFIG_UNKNOWN_KEY', 'ibp_apps.conf:1:63: unknown key apps[0].timout2');
});

test('validateClusterConfig - accepts a consistent model and names each offender of a bad one', () => {
  validateClusterConfig(cluster());
  const bad: ClusterConfig = structuredClone(cluster());
  bad.nodes.push({ node: 'ECIF', invalid: false, hosts: [], keyExp: '', kv: {} });
  bad.apps.push({ app: 'late', desc: '', bin: 'l.js', timeout: -1, timeout2: 0, serverNode: '', invalid: false });
  bad.projects.push({ project: 'q', serverNodes: ['NOWHERE'], clientNodes: [], apps: ['ghost'] });
  assert.throws(() => validateClusterConfig(bad), (err: unknown) => {
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_CONFIG_INVALID');
    const lines = err.message.split('\n');
    assert.deepEqual(lines, [
      'duplicate node "ECIF" (also nodes[0])',
      'app "late": timeout must be > 0 seconds, got -1',
      'project "q": server_nodes names unknown node "NOWHERE"',
      'project "q": apps names unknown app "ghost"',
    ]);
    return true;
  });
});

test('cluster config - loadClusterConfig takes other file names and reports a missing file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-cluster-'));
  try {
    writeFileSync(join(dir, 'n.conf'), NODES);
    writeFileSync(join(dir, 'a.conf'), APPS);
    writeFileSync(join(dir, 'p.conf'), PROJECTS);
    const c = loadClusterConfig(dir, { nodes: 'n.conf', apps: 'a.conf', projects: 'p.conf' });
    assert.equal(c.nodes.length, 2);
    configError(() => loadClusterConfig(dir), 'IBP_ERR_CONFIG_READ', join(dir, 'ibp_nodes.conf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster config - formatClusterConfig writes files that read back to the same model', () => {
  const model = structuredClone(cluster());
  model.nodes[0]!.keyExp = 'k3y';
  model.nodes[0]!.kv = { 'hsm.ip': '10.0.0.9', note: 'a "quoted" value' };
  model.nodes[0]!.hosts.push({ ip: '127.0.0.4', port: 18002, clientOnly: false, invalid: true });
  model.apps[0]!.serverNode = 'ECIF';
  model.apps[0]!.timeout2 = 7.5;
  const texts = formatClusterConfig(model);
  const back = parseClusterConfig({
    nodes: { text: texts.nodes, fileName: 'n' }, apps: { text: texts.apps, fileName: 'a' }, projects: { text: texts.projects, fileName: 'p' },
  });
  assert.deepEqual(back, model);
  const empty = defaultClusterConfTexts();
  assert.deepEqual(parseClusterConfig({
    nodes: { text: empty.nodes, fileName: 'n' }, apps: { text: empty.apps, fileName: 'a' }, projects: { text: empty.projects, fileName: 'p' },
  }), { nodes: [], apps: [], projects: [] });
});
