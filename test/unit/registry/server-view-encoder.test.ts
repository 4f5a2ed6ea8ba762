import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { SnapshotNode } from '../../../src/agent/index.js';
import type { AppConfig } from '../../../src/core/cluster-model.js';
import { decryptViewKeys, generateNodeKeyPair } from '../../../src/registry/index.js';
import type { PublishedView } from '../../../src/registry/store/index.js';
import { ViewEncoder } from '../../../src/registry/view-encoder.js';

const app = (code: string): AppConfig => ({ app: code, desc: `${code} "desc"`, bin: `${code}.mjs`, timeout: 30, timeout2: 0, serverNode: '', invalid: false });
const node = (name: string, keyExp: string, oldKeyExp?: string): SnapshotNode => ({
  name, invalid: false, hosts: [{ ip: '10.0.0.1', port: 18001, clientOnly: false, invalid: false }], keyExp,
  ...(oldKeyExp === undefined ? {} : { oldKeyExp }), newKeyEnableAt: 0, oldKeyDisableAt: 0, kv: name === 'A' ? { k: 'v' } : {},
});

/** A view as the store publishes it: peers and apps are shared objects. */
function viewOf(version: number, peers: SnapshotNode[], apps: AppConfig[], kv: Record<string, string> = { k: 'v' }): PublishedView {
  return { node: 'A', version, nodes: [node('A', 'key-a'), ...peers], apps, servedApps: [apps[0]!.app], kv, packages: [{ app: apps[0]!.app, bin: apps[0]!.bin, sha256: 'ab'.repeat(32), size: 7 }] };
}

/** What the wire view is, built the plain way (JSON.stringify of the whole). */
function plainJson(view: PublishedView, encrypt: (plain: string) => string): string {
  return JSON.stringify({
    ...view,
    nodes: view.nodes.map(({ keyExp, oldKeyExp, ...n }) => ({ ...n, keyExpEnc: encrypt(keyExp ?? ''), oldKeyExpEnc: encrypt(oldKeyExp ?? '') })),
  });
}

describe('registry server - view encoder', () => {
  const fakeKey = createPublicKey(generateNodeKeyPair(1024).publicKeyPem);
  const fake = (plain: string): string => (plain === '' ? '' : `enc(${plain})`);

  it('view encoder - the bytes equal JSON.stringify of the wire view, field order included', () => {
    const calls: string[] = [];
    const enc = new ViewEncoder((_k, p) => {
      calls.push(p);
      return fake(p);
    });
    const peers = [node('B', 'key-b', 'old-b'), node('C', '')];
    const v = viewOf(3, peers, [app('x'), app('y\u00e9')]);
    assert.equal(enc.encode(v, 'A', fakeKey).toString(), plainJson(v, fake));
    assert.deepEqual(calls.sort(), ['key-a', 'key-b', 'old-b'], "'' is not encrypted");
  });

  it('view encoder - a new version with unchanged keys encrypts nothing again; a new public key does', () => {
    let calls = 0;
    const enc = new ViewEncoder((_k, p) => {
      calls++;
      return fake(p);
    });
    const apps = [app('x')];
    enc.encode(viewOf(1, [node('B', 'key-b')], apps), 'A', fakeKey);
    assert.equal(calls, 2);
    const v2 = viewOf(2, [node('B', 'key-b')], apps, { k: 'changed' });
    assert.equal(enc.encode(v2, 'A', fakeKey).toString(), plainJson(v2, fake));
    assert.equal(calls, 2, 'cached per (requesting node, key)');
    enc.encode(viewOf(3, [node('B', 'key-b2')], apps), 'A', fakeKey);
    assert.equal(calls, 3, 'a changed key is encrypted');
    enc.encode(viewOf(4, [node('B', 'key-b2')], apps), 'Z', fakeKey);
    assert.equal(calls, 5, 'per requesting node');
    const otherKey: KeyObject = createPublicKey(generateNodeKeyPair(1024).publicKeyPem);
    enc.encode(viewOf(5, [node('B', 'key-b2')], apps), 'A', otherKey);
    assert.equal(calls, 7, 'a new public key of the node starts afresh');
  });

  it('view encoder - with real RSA-OAEP the requester decrypts its keys back', () => {
    const pair = generateNodeKeyPair(1024);
    const enc = new ViewEncoder();
    const v = viewOf(1, [node('B', 'key-b', 'old-b')], [app('x')]);
    const wire = JSON.parse(enc.encode(v, 'A', createPublicKey(pair.publicKeyPem)).toString());
    const back = decryptViewKeys(wire, createPrivateKey(pair.privateKeyPem));
    assert.equal(back.nodes[0]!.keyExp, 'key-a');
    assert.equal(back.nodes[1]!.keyExp, 'key-b');
    assert.equal(back.nodes[1]!.oldKeyExp, 'old-b');
    assert.deepEqual(back.apps, v.apps);
  });
});
