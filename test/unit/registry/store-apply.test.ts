import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateClusterConfig } from '../../../src/core/config/index.js';
import { IbpError, type ErrorCode } from '../../../src/core/errors.js';
import type { AdminCommand, RegistryStore } from '../../../src/registry/store/index.js';
import { plain, testHome, type TestHome } from './store-helpers.js';

/** Applies a command that must fail with `code` and a message matching `re`; checks nothing changed. */
function rejects(h: TestHome, store: RegistryStore, cmd: AdminCommand | Record<string, unknown>, code: ErrorCode, re: RegExp): void {
  const before = { cluster: plain(store.cluster), seq: store.lastSeq, pending: store.pendingNodes(), journal: h.journalBytes() };
  assert.throws(() => store.apply(cmd as AdminCommand), (err: unknown) => {
    assert.ok(err instanceof IbpError, `not an IbpError: ${String(err)}`);
    assert.equal(err.code, code, `${JSON.stringify(cmd)}: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
  assert.deepEqual(plain(store.cluster), before.cluster, 'the cluster changed');
  assert.equal(store.lastSeq, before.seq, 'a record was journaled');
  assert.deepEqual(store.pendingNodes(), before.pending, 'pending changed');
  assert.deepEqual(h.journalBytes(), before.journal, 'the journal file changed');
}

/** Applies a command that must succeed; the cluster stays valid and the record is journaled. */
function ok(store: RegistryStore, cmd: AdminCommand): string[] {
  const seq = store.lastSeq;
  const r = store.apply(cmd);
  assert.equal(r.seq, seq + 1);
  validateClusterConfig(plain(store.cluster));
  return r.changedNodes;
}

describe('registry store - apply', () => {
  let h: TestHome;
  let store: RegistryStore;
  before(() => {
    h = testHome();
    store = h.open({ now: () => 1_700_000_000_000 });
    store.distribute(); // nothing pending afterwards, so changedNodes = what each change marks
  });
  after(() => {
    store.close();
    h.cleanup();
  });
  const node = (n: string) => store.cluster.nodes.find((x) => x.node === n);
  const app = (a: string) => store.cluster.apps.find((x) => x.app === a);
  const project = (p: string) => store.cluster.projects.find((x) => x.project === p);

  it('apply - the command shape is checked: unknown action, unknown or foreign field, non-string, missing', () => {
    rejects(h, store, { action: 'drop_everything' }, 'IBP_ERR_REGISTRY_BAD_ARG', /unknown admin action "drop_everything"/);
    rejects(h, store, { action: 'add_node', node: 'X', colour: 'red' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--colour: unknown argument/);
    rejects(h, store, { action: 'add_app', app: 'a', bin: 'a.mjs', timeout: '3', ip: '1.2.3.4' }, 'IBP_ERR_REGISTRY_BAD_ARG', /add_app --ip: not an argument of add_app/);
    rejects(h, store, { action: 'add_node', node: 5 }, 'IBP_ERR_REGISTRY_BAD_ARG', /--node: expected a string/);
    rejects(h, store, { action: 'add_node_host', node: 'ECIF', ip: '1.2.3.4' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--port: missing/);
  });

  it('apply - add_node adds a node (invalid, key) and marks it; bad or existing names are refused', () => {
    assert.deepEqual(ok(store, { action: 'add_node', node: 'NEW1', invalid: '1', key_exp: 'k1' }), ['NEW1']);
    assert.deepEqual(node('NEW1'), { node: 'NEW1', invalid: true, hosts: [], keyExp: 'k1', kv: {} });
    assert.equal(store.keyState('NEW1'), undefined, 'add_node with a key is no rotation');
    rejects(h, store, { action: 'add_node', node: 'NEW1' }, 'IBP_ERR_REGISTRY_EXISTS', /node "NEW1" already exists/);
    rejects(h, store, { action: 'add_node', node: 'A B' }, 'IBP_ERR_REGISTRY_BAD_ARG', /add_node --node: expected a node name/);
    rejects(h, store, { action: 'add_node', node: 'x'.repeat(33) }, 'IBP_ERR_REGISTRY_BAD_ARG', /--node/);
    rejects(h, store, { action: 'add_node', node: 'N2', invalid: 'yes' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--invalid: expected 0 or 1 \(got "yes"\)/);
    rejects(h, store, { action: 'add_node', node: 'N2', key_exp: 'a\nb' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--key-exp/);
  });

  it('apply - set_node --invalid marks the node and the clients of its server projects', () => {
    assert.deepEqual(ok(store, { action: 'set_node', node: 'ECIF', invalid: '1' }), ['CORE', 'ECIF']);
    assert.equal(node('ECIF')?.invalid, true);
    assert.deepEqual(ok(store, { action: 'set_node', node: 'ECIF', invalid: '0' }), ['CORE', 'ECIF']);
    assert.deepEqual(ok(store, { action: 'set_node', node: 'ECIF', invalid: '0' }), [], 'no change, nothing marked');
    rejects(h, store, { action: 'set_node', node: 'NOPE', invalid: '1' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /node "NOPE" is not defined/);
    rejects(h, store, { action: 'set_node', node: 'ECIF' }, 'IBP_ERR_REGISTRY_BAD_ARG', /needs --invalid or --key-exp/);
  });

  it('apply - set_node --key-exp starts a rotation timed from now by the ibms.conf elapses', () => {
    assert.deepEqual(ok(store, { action: 'set_node', node: 'CRM', key_exp: 'crm-key-2' }), ['CRM', 'ECIF']);
    assert.equal(node('CRM')?.keyExp, 'crm-key-2');
    // now = 1_700_000_000 s; new_key_enable_elapse 60, old_key_disable_elapse 120
    assert.deepEqual(store.keyState('CRM'), { oldKeyExp: 'crm-key', newKeyEnableAt: 1_700_000_060, oldKeyDisableAt: 1_700_000_120 });
  });

  it('apply - remove_node is refused while a project or an app uses the node', () => {
    rejects(h, store, { action: 'remove_node', node: 'CRM' }, 'IBP_ERR_REGISTRY_INVALID', /node "CRM" is still used by project "P2" \(server_nodes\)/);
    rejects(h, store, { action: 'remove_node', node: 'GW' }, 'IBP_ERR_REGISTRY_INVALID', /"P3" \(client_nodes\)/);
    ok(store, { action: 'add_node', node: 'SRV' });
    ok(store, { action: 'set_app', app: 'orphan', server_node: 'SRV' });
    rejects(h, store, { action: 'remove_node', node: 'SRV' }, 'IBP_ERR_REGISTRY_INVALID', /server_node of app "orphan"/);
    ok(store, { action: 'set_app', app: 'orphan', server_node: '' });
    assert.deepEqual(ok(store, { action: 'remove_node', node: 'SRV' }), []);
    assert.equal(node('SRV'), undefined);
    rejects(h, store, { action: 'remove_node', node: 'SRV' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /SRV/);
  });

  it('apply - add_node_host adds server and client-only hosts; a host is unique in the cluster', () => {
    assert.deepEqual(ok(store, { action: 'add_node_host', node: 'ECIF', ip: '10.1.1.1', port: '19001' }), ['CORE', 'ECIF']);
    assert.deepEqual(ok(store, { action: 'add_node_host', node: 'GW', ip: '10.1.1.2', port: '-19002' }), ['GW']);
    assert.deepEqual(node('GW')?.hosts.at(-1), { ip: '10.1.1.2', port: 19002, clientOnly: true, invalid: false });
    rejects(h, store, { action: 'add_node_host', node: 'ECIF', ip: '10.1.1.1', port: '19001' }, 'IBP_ERR_REGISTRY_EXISTS', /already has host 10.1.1.1:19001/);
    rejects(h, store, { action: 'add_node_host', node: 'CRM', ip: '10.1.1.1', port: '19001' }, 'IBP_ERR_REGISTRY_INVALID', /duplicate host 10.1.1.1:19001: already a host of node "ECIF"/);
    for (const port of ['0', '65536', 'abc', '-70000', '']) {
      rejects(h, store, { action: 'add_node_host', node: 'CRM', ip: '10.1.1.3', port }, 'IBP_ERR_REGISTRY_BAD_ARG', /add_node_host --port: expected a port/);
    }
    rejects(h, store, { action: 'add_node_host', node: 'CRM', ip: 'not an ip!', port: '1' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--ip: expected an IP address or host name/);
    rejects(h, store, { action: 'add_node_host', node: 'NOPE', ip: '10.1.1.3', port: '1' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /NOPE/);
  });

  it('apply - remove_node_host removes a host by address; an unknown host is not found', () => {
    assert.deepEqual(ok(store, { action: 'remove_node_host', node: 'GW', ip: '10.1.1.2', port: '-19002' }), ['GW']);
    assert.equal(node('GW')?.hosts.length, 1);
    rejects(h, store, { action: 'remove_node_host', node: 'GW', ip: '10.1.1.2', port: '19002' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /has no host 10.1.1.2:19002/);
    // the address is free again
    ok(store, { action: 'add_node_host', node: 'CRM', ip: '10.1.1.2', port: '19002' });
  });

  it('apply - add_app checks every field and the cluster rules', () => {
    assert.deepEqual(ok(store, { action: 'add_app', app: 'new_app', desc: 'New', bin: 'new.mjs', timeout: '20', timeout2: '45.5', server_node: 'CRM' }), []);
    assert.deepEqual(app('new_app'), { app: 'new_app', desc: 'New', bin: 'new.mjs', timeout: 20, timeout2: 45.5, serverNode: 'CRM', invalid: false });
    rejects(h, store, { action: 'add_app', app: 'new_app', bin: 'x.mjs', timeout: '1' }, 'IBP_ERR_REGISTRY_EXISTS', /app "new_app" already exists/);
    rejects(h, store, { action: 'add_app', app: 'a2', timeout: '1' }, 'IBP_ERR_REGISTRY_BAD_ARG', /add_app --bin: missing/);
    rejects(h, store, { action: 'add_app', app: 'a2', bin: '../etc/passwd', timeout: '1' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--bin: expected a file name in so\//);
    rejects(h, store, { action: 'add_app', app: 'a2', bin: 'a2.mjs', timeout: 'ten' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--timeout: expected a number of seconds \(got "ten"\)/);
    rejects(h, store, { action: 'add_app', app: 'a2', bin: 'a2.mjs', timeout: '0' }, 'IBP_ERR_REGISTRY_INVALID', /timeout must be > 0 seconds, got 0/);
    rejects(h, store, { action: 'add_app', app: 'a2', bin: 'a2.mjs', timeout: '5', timeout2: '-1' }, 'IBP_ERR_REGISTRY_INVALID', /timeout2 must be >= 0/);
    rejects(h, store, { action: 'add_app', app: 'a2', bin: 'a2.mjs', timeout: '5', server_node: 'NOPE' }, 'IBP_ERR_REGISTRY_INVALID', /server_node names unknown node "NOPE"/);
    rejects(h, store, { action: 'add_app', app: 'a 2', bin: 'a2.mjs', timeout: '5' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--app: expected an app code/);
    rejects(h, store, { action: 'add_app', app: 'a2', bin: 'a2.mjs', timeout: '5', desc: 'd'.repeat(257) }, 'IBP_ERR_REGISTRY_BAD_ARG', /--desc: expected at most 256 characters/);
  });

  it('apply - set_app changes the fields given and marks every node of the projects listing the app', () => {
    assert.deepEqual(ok(store, { action: 'set_app', app: 'ibp_test_echo', timeout: '40' }), ['CORE', 'ECIF']);
    assert.equal(app('ibp_test_echo')?.timeout, 40);
    assert.equal(app('ibp_test_echo')?.serverNode, 'ECIF', 'fields not given are kept');
    rejects(h, store, { action: 'set_app', app: 'ibp_test_echo' }, 'IBP_ERR_REGISTRY_BAD_ARG', /needs at least one of/);
    rejects(h, store, { action: 'set_app', app: 'nope', timeout: '3' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /app "nope" is not defined/);
    rejects(h, store, { action: 'set_app', app: 'ibp_test_echo', timeout: '-3' }, 'IBP_ERR_REGISTRY_INVALID', /timeout must be > 0/);
  });

  it('apply - update_app marks the nodes serving the app only', () => {
    assert.deepEqual(ok(store, { action: 'update_app', app: 'ibp_test_echo' }), ['ECIF']);
    assert.deepEqual(ok(store, { action: 'update_app', app: 'orphan' }), []);
    rejects(h, store, { action: 'update_app', app: 'nope' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /nope/);
  });

  it('apply - remove_app is refused while a project lists the app', () => {
    rejects(h, store, { action: 'remove_app', app: 'crm_query' }, 'IBP_ERR_REGISTRY_INVALID', /app "crm_query" is still listed by project "P2"/);
    assert.deepEqual(ok(store, { action: 'remove_app', app: 'new_app' }), []);
    assert.equal(app('new_app'), undefined);
  });

  it('apply - add_project checks its nodes and apps and marks its server and client nodes', () => {
    assert.deepEqual(ok(store, { action: 'add_project', project: 'P4', server_nodes: 'LONE', client_nodes: 'GW, CRM', apps: 'orphan' }), ['CRM', 'GW', 'LONE']);
    assert.deepEqual(project('P4'), { project: 'P4', serverNodes: ['LONE'], clientNodes: ['GW', 'CRM'], apps: ['orphan'] });
    rejects(h, store, { action: 'add_project', project: 'P4' }, 'IBP_ERR_REGISTRY_EXISTS', /project "P4" already exists/);
    rejects(h, store, { action: 'add_project', project: 'P5', server_nodes: 'NOPE' }, 'IBP_ERR_REGISTRY_INVALID', /server_nodes names unknown node "NOPE"/);
    rejects(h, store, { action: 'add_project', project: 'P5', client_nodes: 'GW NOPE' }, 'IBP_ERR_REGISTRY_INVALID', /client_nodes names unknown node "NOPE"/);
    rejects(h, store, { action: 'add_project', project: 'P5', apps: 'orphan nope' }, 'IBP_ERR_REGISTRY_INVALID', /apps names unknown app "nope"/);
    rejects(h, store, { action: 'add_project', project: 'P5', apps: 'orphan orphan' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--apps: lists app "orphan" twice/);
    rejects(h, store, { action: 'add_project', project: 'P 5' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--project/);
  });

  it('apply - set_project marks the nodes before and after; remove_project its nodes', () => {
    assert.deepEqual(ok(store, { action: 'set_project', project: 'P4', client_nodes: 'CORE' }), ['CORE', 'CRM', 'GW', 'LONE']);
    assert.deepEqual(project('P4')?.clientNodes, ['CORE']);
    assert.deepEqual(project('P4')?.apps, ['orphan'], 'lists not given are kept');
    rejects(h, store, { action: 'set_project', project: 'P4' }, 'IBP_ERR_REGISTRY_BAD_ARG', /needs at least one of/);
    rejects(h, store, { action: 'set_project', project: 'P4', apps: 'nope' }, 'IBP_ERR_REGISTRY_INVALID', /unknown app "nope"/);
    assert.deepEqual(ok(store, { action: 'remove_project', project: 'P4' }), ['CORE', 'LONE']);
    rejects(h, store, { action: 'remove_project', project: 'P4' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /P4/);
  });

  it('apply - node KV: add, set, remove mark the node only; a key named __proto__ is an ordinary key', () => {
    assert.deepEqual(ok(store, { action: 'add_node_kv', node: 'ECIF', key: 'db.url', value: 'pg://x' }), ['ECIF']);
    rejects(h, store, { action: 'add_node_kv', node: 'ECIF', key: 'db.url', value: 'y' }, 'IBP_ERR_REGISTRY_EXISTS', /already has kv "db.url"/);
    assert.deepEqual(ok(store, { action: 'set_node_kv', node: 'ECIF', key: 'db.url', value: 'pg://y' }), ['ECIF']);
    assert.equal(node('ECIF')?.kv['db.url'], 'pg://y');
    rejects(h, store, { action: 'set_node_kv', node: 'ECIF', key: 'nope', value: 'y' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /has no kv "nope"/);
    rejects(h, store, { action: 'remove_node_kv', node: 'ECIF', key: 'db.url', value: 'other' }, 'IBP_ERR_REGISTRY_NOT_FOUND', /is "pg:\/\/y", not "other"/);
    rejects(h, store, { action: 'add_node_kv', node: 'ECIF', key: 'a b', value: 'y' }, 'IBP_ERR_REGISTRY_BAD_ARG', /--key/);
    assert.deepEqual(ok(store, { action: 'remove_node_kv', node: 'ECIF', key: 'db.url', value: 'pg://y' }), ['ECIF']);
    assert.equal(Object.hasOwn(node('ECIF')?.kv ?? {}, 'db.url'), false);
    ok(store, { action: 'add_node_kv', node: 'LONE', key: '__proto__', value: 'v' });
    const kv = node('LONE')?.kv ?? {};
    assert.ok(Object.hasOwn(kv, '__proto__'));
    assert.equal(Object.getPrototypeOf(kv), Object.prototype);
  });

  it('apply - records handed out are frozen and never change', () => {
    const ecif = node('ECIF');
    assert.ok(Object.isFrozen(ecif));
    ok(store, { action: 'add_node_kv', node: 'ECIF', key: 'k9', value: 'v9' });
    assert.equal(Object.hasOwn(ecif?.kv ?? {}, 'k9'), false, 'the old record is unchanged');
  });
});
