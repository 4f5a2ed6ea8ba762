import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deriveNodeView } from '../../../src/agent/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { sampleCluster } from './sample-data.js';

describe('derive node view', () => {
  it('derive - a client node sees itself, its projects\' server nodes and their apps only', () => {
    const v = deriveNodeView(sampleCluster(), 'CORE');
    // CORE is a client in P1 (→ ECIF) and a server in P3 (core_local).
    assert.deepEqual(v.nodes.map((n) => n.name), ['CORE', 'ECIF']);
    assert.deepEqual(v.apps.map((a) => a.app), ['ibp_test_echo', 'ibp_test_file', 'core_local']);
    assert.deepEqual(v.servedApps, ['core_local']);
    assert.deepEqual(v.kv, { core_param: 'p' });
  });

  it('derive - a node sees its own KV but never another node\'s', () => {
    const v = deriveNodeView(sampleCluster(), 'CORE');
    assert.deepEqual(v.nodes.find((n) => n.name === 'CORE')?.kv, { core_param: 'p' });
    assert.deepEqual(v.nodes.find((n) => n.name === 'ECIF')?.kv, {}, 'ECIF has KV, but it is ECIF\'s alone');
  });

  it('derive - a server node does not see its clients; a node both client and server sees both sides', () => {
    const ecif = deriveNodeView(sampleCluster(), 'ECIF');
    // ECIF serves P1 (to CORE) and is a client of CRM in P2.
    assert.deepEqual(ecif.nodes.map((n) => n.name), ['ECIF', 'CRM']);
    assert.deepEqual(ecif.apps.map((a) => a.app), ['ibp_test_echo', 'ibp_test_file', 'crm_query']);
    assert.deepEqual(ecif.servedApps, ['ibp_test_echo', 'ibp_test_file']);
    const crm = deriveNodeView(sampleCluster(), 'CRM');
    assert.deepEqual(crm.nodes.map((n) => n.name), ['CRM']);
    assert.deepEqual(crm.servedApps, ['crm_query']);
  });

  it('derive - a node in no project sees only itself', () => {
    const c = sampleCluster();
    c.nodes.push({ node: 'LONE', invalid: false, hosts: [], keyExp: '', kv: { a: '1' } });
    const v = deriveNodeView(c, 'LONE');
    assert.deepEqual(v.nodes.map((n) => n.name), ['LONE']);
    assert.deepEqual(v.apps, []);
    assert.deepEqual(v.servedApps, []);
    assert.deepEqual(v.kv, { a: '1' });
  });

  it('derive - hosts, flags and keys are carried; key timestamps start at 0', () => {
    const c = sampleCluster();
    c.nodes[0]!.invalid = true;
    c.nodes[0]!.hosts.push({ ip: '127.0.0.2', port: 18002, clientOnly: false, invalid: true });
    const v = deriveNodeView(c, 'CORE');
    const ecif = v.nodes.find((n) => n.name === 'ECIF');
    assert.deepEqual(ecif, {
      name: 'ECIF',
      invalid: true,
      hosts: [
        { ip: '127.0.0.2', port: 18001, clientOnly: false, invalid: false },
        { ip: '127.0.0.2', port: 18002, clientOnly: false, invalid: true },
      ],
      keyExp: 'ecif-key',
      oldKeyExp: '',
      newKeyEnableAt: 0,
      oldKeyDisableAt: 0,
      kv: {},
    });
    assert.equal(v.nodes[0]?.hosts[0]?.clientOnly, true);
  });

  it('derive - an app keeps its serverNode default even when that node is outside the view', () => {
    const c = sampleCluster();
    c.apps.find((a) => a.app === 'ibp_test_file')!.serverNode = 'CRM';
    const v = deriveNodeView(c, 'CORE');
    assert.equal(v.apps.find((a) => a.app === 'ibp_test_file')?.serverNode, 'CRM');
    assert.equal(v.apps.find((a) => a.app === 'ibp_test_echo')?.serverNode, 'ECIF');
    assert.ok(!v.nodes.some((n) => n.name === 'CRM'));
  });

  it('derive - names a project lists but the cluster lacks are skipped', () => {
    const c = sampleCluster();
    c.projects.push({ project: 'P4', serverNodes: ['GHOST'], clientNodes: ['CORE'], apps: ['no_such_app'] });
    c.projects.push({ project: 'P5', serverNodes: ['CORE'], clientNodes: [], apps: ['no_such_app_2'] });
    const v = deriveNodeView(c, 'CORE');
    assert.deepEqual(v.nodes.map((n) => n.name), ['CORE', 'ECIF']);
    assert.ok(!v.apps.some((a) => a.app.startsWith('no_such')));
    assert.deepEqual(v.servedApps, ['core_local']);
  });

  it('derive - the view is a copy: changing it does not change the cluster', () => {
    const c = sampleCluster();
    const v = deriveNodeView(c, 'CORE');
    v.kv.core_param = 'changed';
    v.apps[0]!.timeout = 1;
    v.nodes[1]!.hosts[0]!.port = 1;
    assert.equal(c.nodes[1]!.kv.core_param, 'p');
    assert.equal(c.apps[0]!.timeout, 30);
    assert.equal(c.nodes[0]!.hosts[0]!.port, 18001);
  });

  it('derive - an unknown node is IBP_ERR_REPLICA_UNKNOWN_NODE', () => {
    assert.throws(() => deriveNodeView(sampleCluster(), 'NOPE'), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REPLICA_UNKNOWN_NODE' && /NOPE/.test(e.message));
  });
});
