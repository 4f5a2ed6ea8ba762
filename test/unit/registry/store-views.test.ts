import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCluster } from '../../../bench/registry-gen.js';
import { deriveNodeView } from '../../../src/agent/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { plain, testHome } from './store-helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('registry store - views, keys, packages', () => {
  it('views - distribute publishes every pending node under one new version, as deriveNodeView derives it', () => {
    const h = testHome();
    try {
      const s = h.open();
      const d = s.distribute();
      assert.deepEqual(d, { nodes: ['CORE', 'CRM', 'ECIF', 'GW', 'LONE'], version: 1 });
      for (const n of d.nodes) {
        const v = s.published(n);
        const expected = deriveNodeView(plain(s.cluster), n);
        assert.equal(v?.version, 1);
        assert.deepEqual(plain({ nodes: v?.nodes, apps: v?.apps, servedApps: v?.servedApps, kv: v?.kv } as never),
          plain({ ...expected, nodes: expected.nodes.map((x) => ({ ...x, oldKeyExp: '' })) } as never), n);
      }
      assert.deepEqual(s.distribute(), { nodes: [], version: 1 }, 'nothing pending: no new version');
      s.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - a change is published only to the nodes it affects, and only at the next distribute', () => {
    const h = testHome();
    try {
      const s = h.open();
      s.distribute();
      s.apply({ action: 'add_node_host', node: 'CRM', ip: '10.0.0.9', port: '19009' });
      assert.deepEqual(s.pendingNodes(), ['CRM', 'ECIF'], 'CRM and its client ECIF');
      assert.equal(s.published('ECIF')?.nodes.find((n) => n.name === 'CRM')?.hosts.length, 1, 'not before distribute');
      assert.deepEqual(s.distribute(), { nodes: ['CRM', 'ECIF'], version: 2 });
      assert.equal(s.published('ECIF')?.nodes.find((n) => n.name === 'CRM')?.hosts.length, 2);
      assert.equal(s.published('CORE')?.version, 1, 'CORE was not affected');
      s.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - download_config republishes one node with a new version; an unknown node is not found', () => {
    const h = testHome();
    try {
      const s = h.open();
      s.distribute();
      assert.deepEqual(s.downloadConfig('GW'), { version: 2 });
      assert.equal(s.published('GW')?.version, 2);
      assert.throws(() => s.downloadConfig('NOPE'), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_NOT_FOUND');
      s.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - key rotation: the node and its clients get the old key and the enable/disable times, then the new key alone', () => {
    const h = testHome();
    let now = 1_800_000_000_000;
    try {
      const s = h.open({ now: () => now });
      s.distribute();
      s.apply({ action: 'set_node', node: 'ECIF', key_exp: 'ecif-key-2' });
      assert.deepEqual(s.distribute().nodes, ['CORE', 'ECIF']);
      const seenByCore = s.published('CORE')?.nodes.find((n) => n.name === 'ECIF');
      assert.deepEqual({ ...seenByCore, hosts: undefined }, {
        name: 'ECIF', invalid: false, hosts: undefined, keyExp: 'ecif-key-2', oldKeyExp: 'ecif-key',
        newKeyEnableAt: 1_800_000_060, oldKeyDisableAt: 1_800_000_120, kv: {},
      });
      const self = s.published('ECIF')?.nodes[0];
      assert.equal(self?.oldKeyExp, 'ecif-key');
      assert.equal(self?.newKeyEnableAt, 1_800_000_060);
      // after the old key's disable time a new publish carries the new key alone
      now += 121_000;
      s.downloadConfig('CORE');
      const later = s.published('CORE')?.nodes.find((n) => n.name === 'ECIF');
      assert.deepEqual([later?.keyExp, later?.oldKeyExp, later?.newKeyEnableAt, later?.oldKeyDisableAt], ['ecif-key-2', '', 0, 0]);
      s.close();
      const again = h.open({ now: () => 1_800_000_010_000 });
      assert.deepEqual(again.keyState('ECIF'), { oldKeyExp: 'ecif-key', newKeyEnableAt: 1_800_000_060, oldKeyDisableAt: 1_800_000_120 });
      again.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - packages: served apps whose so/<bin> exists, with sha256 and size', () => {
    const h = testHome();
    try {
      writeFileSync(join(h.home.so, 'ibp_test_echo.mjs'), 'export default 1;\n');
      const s = h.open();
      s.distribute();
      assert.deepEqual(s.published('ECIF')?.packages, [
        { app: 'ibp_test_echo', bin: 'ibp_test_echo.mjs', sha256: sha('export default 1;\n'), size: 18 },
      ], 'ibp_test_file.mjs does not exist: not listed');
      assert.deepEqual(s.published('CORE')?.packages, [], 'CORE serves core_local only, whose file is missing');
      s.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - refreshPackages makes pending exactly the nodes serving a package that changed, appeared or went', () => {
    const h = testHome();
    try {
      writeFileSync(join(h.home.so, 'ibp_test_echo.mjs'), 'v1');
      const s = h.open();
      s.distribute();
      assert.deepEqual(s.refreshPackages(), [], 'nothing changed since the publish');
      writeFileSync(join(h.home.so, 'ibp_test_echo.mjs'), 'v2 longer');
      assert.deepEqual(s.refreshPackages(['ibp_test_echo.mjs']), ['ECIF']);
      assert.deepEqual(s.pendingNodes(), ['ECIF']);
      s.distribute();
      assert.equal(s.published('ECIF')?.packages[0]?.sha256, sha('v2 longer'));
      writeFileSync(join(h.home.so, 'crm_query.mjs'), 'new');
      assert.deepEqual(s.refreshPackages(), ['CRM'], 'a package that appeared');
      s.distribute();
      unlinkSync(join(h.home.so, 'crm_query.mjs'));
      assert.deepEqual(s.refreshPackages(), ['CRM'], 'a package that went');
      writeFileSync(join(h.home.so, 'unrelated.mjs'), 'x');
      assert.deepEqual(s.refreshPackages(['unrelated.mjs']), [], 'no app uses it');
      s.close();
      const again = h.open();
      assert.deepEqual(again.pendingNodes(), ['CRM'], 'marks made by refreshPackages are journaled');
      again.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - update_app marks the serving nodes, and the next distribute carries the new package', () => {
    const h = testHome();
    try {
      writeFileSync(join(h.home.so, 'core_local.mjs'), 'one');
      const s = h.open();
      s.distribute();
      writeFileSync(join(h.home.so, 'core_local.mjs'), 'two');
      assert.deepEqual(s.apply({ action: 'update_app', app: 'core_local' }).changedNodes, ['CORE']);
      s.distribute();
      assert.equal(s.published('CORE')?.packages[0]?.sha256, sha('two'));
      s.close();
    } finally {
      h.cleanup();
    }
  });

  it('views - published views share app records and are frozen', () => {
    const h = testHome();
    try {
      const s = h.open();
      s.distribute();
      const core = s.published('CORE');
      const ecif = s.published('ECIF');
      assert.equal(core?.apps.find((a) => a.app === 'ibp_test_echo'), ecif?.apps.find((a) => a.app === 'ibp_test_echo'));
      assert.ok(Object.isFrozen(core?.apps[0]));
      assert.ok(Object.isFrozen(core?.nodes[0]));
      assert.ok(Object.isFrozen(core) && Object.isFrozen(core?.packages) && Object.isFrozen(core?.kv));
      s.close();
      const again = h.open();
      const back = again.published('CORE');
      assert.ok(Object.isFrozen(back) && Object.isFrozen(back?.apps) && Object.isFrozen(back?.nodes), 'frozen after a restart too');
      again.close();
    } finally {
      h.cleanup();
    }
  });
  it('views - non-ASCII text in a view survives the view segment and a restart byte for byte', () => {
    const h = testHome();
    try {
      const s = h.open();
      s.apply({ action: 'set_app', app: 'ibp_test_echo', desc: 'déjà vu 交易 😀' });
      s.apply({ action: 'set_node_kv', node: 'CORE', key: 'core_param', value: 'ü' });
      s.distribute();
      s.close();
      const again = h.open();
      assert.equal(again.published('CORE')?.apps.find((a) => a.app === 'ibp_test_echo')?.desc, 'déjà vu 交易 😀');
      assert.equal(again.published('CORE')?.kv.core_param, 'ü');
      again.close();
    } finally {
      h.cleanup();
    }
  });
  it('views - on a generated cluster every published view is what deriveNodeView derives from the whole cluster', () => {
    const h = testHome(generateCluster({ nodes: 60, hosts: 150, apps: 1200, projects: 90 }));
    try {
      const s = h.open();
      const d = s.distribute();
      const whole = plain(s.cluster);
      for (const n of d.nodes) {
        const v = s.published(n)!;
        const expected = deriveNodeView(whole, n);
        assert.deepEqual(plain({ nodes: v.nodes, apps: v.apps, servedApps: v.servedApps, kv: v.kv } as never),
          plain({ ...expected, nodes: expected.nodes.map((x) => ({ ...x, oldKeyExp: '' })) } as never), n);
      }
      s.close();
    } finally {
      h.cleanup();
    }
  });
  it('views - an app change, and an app taken out of its project and removed, reach the next views', () => {
    const h = testHome();
    try {
      const s = h.open();
      s.distribute();
      s.apply({ action: 'set_app', app: 'ibp_test_file', desc: 'new desc' });
      s.distribute();
      assert.equal(s.published('CORE')?.apps.find((a) => a.app === 'ibp_test_file')?.desc, 'new desc');
      s.apply({ action: 'set_project', project: 'P1', apps: 'ibp_test_echo' });
      s.apply({ action: 'remove_app', app: 'ibp_test_file' });
      s.apply({ action: 'add_app', app: 'ibp_test_file', bin: 'again.mjs', timeout: '5' });
      s.apply({ action: 'set_project', project: 'P1', apps: 'ibp_test_echo ibp_test_file' });
      s.distribute();
      assert.deepEqual(s.published('CORE')?.apps.map((a) => [a.app, a.bin]), [['ibp_test_echo', 'ibp_test_echo.mjs'], ['core_local', 'core_local.mjs'], ['ibp_test_file', 'again.mjs']]);
      assert.deepEqual(s.published('ECIF')?.servedApps, ['ibp_test_echo', 'ibp_test_file']);
      s.close();
    } finally {
      h.cleanup();
    }
  });
});
