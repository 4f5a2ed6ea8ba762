import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import {
  decryptForNode, decryptViewKeys, encryptForNode, generateNodeKeyPair, signNodeRequest, toPrivateKey, toPublicKey, verifyNodeSignature,
  type WireView,
} from '../../../src/registry/index.js';
import { RequestAuth } from '../../../src/registry/request-auth.js';

const PAIR = generateNodeKeyPair(1024);
const OTHER = generateNodeKeyPair(1024);

/** A request carrying just these headers. */
const fakeReq = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

describe('node keys - signatures and key encryption', () => {
  test('a signed request verifies with the public key, and not after any signed field changes', () => {
    const h = signNodeRequest('ECIF', PAIR.privateKeyPem, 'get', '/v1/view?index=3', 1_700_000_000_000);
    assert.equal(h['x-ibp-node'], 'ECIF');
    assert.equal(h['x-ibp-time'], '1700000000000');
    const pub = toPublicKey(PAIR.publicKeyPem);
    assert.ok(verifyNodeSignature(pub, 'ECIF', '1700000000000', 'GET', '/v1/view?index=3', h['x-ibp-sign']!));
    assert.equal(verifyNodeSignature(pub, 'ECIF', '1700000000000', 'GET', '/v1/view?index=4', h['x-ibp-sign']!), false);
    assert.equal(verifyNodeSignature(pub, 'CORE', '1700000000000', 'GET', '/v1/view?index=3', h['x-ibp-sign']!), false);
    assert.equal(verifyNodeSignature(pub, 'ECIF', '1700000000001', 'GET', '/v1/view?index=3', h['x-ibp-sign']!), false);
    assert.equal(verifyNodeSignature(pub, 'ECIF', '1700000000000', 'POST', '/v1/view?index=3', h['x-ibp-sign']!), false);
    assert.equal(verifyNodeSignature(toPublicKey(OTHER.publicKeyPem), 'ECIF', '1700000000000', 'GET', '/v1/view?index=3', h['x-ibp-sign']!), false);
    assert.equal(verifyNodeSignature(pub, 'ECIF', '1700000000000', 'GET', '/v1/view?index=3', '%%%not base64'), false);
  });

  test('a key encrypted for a node decrypts only with its private key; empty stays empty', () => {
    const enc = encryptForNode(toPublicKey(PAIR.publicKeyPem), 'k-0123456789abcdef');
    assert.notEqual(enc, 'k-0123456789abcdef');
    assert.equal(decryptForNode(toPrivateKey(PAIR.privateKeyPem), enc), 'k-0123456789abcdef');
    assert.equal(encryptForNode(toPublicKey(PAIR.publicKeyPem), ''), '');
    assert.throws(() => decryptForNode(toPrivateKey(OTHER.privateKeyPem), enc), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_AUTH');
  });

  test('decryptViewKeys gives back keyExp and oldKeyExp of every node', () => {
    const pub = toPublicKey(PAIR.publicKeyPem);
    const view: WireView = {
      node: 'CORE', version: 7, apps: [], servedApps: [], kv: {}, packages: [],
      nodes: [{ name: 'ECIF', invalid: false, hosts: [], kv: {}, newKeyEnableAt: 5, oldKeyDisableAt: 9, keyExpEnc: encryptForNode(pub, 'new'), oldKeyExpEnc: encryptForNode(pub, 'old') }],
    };
    const plain = decryptViewKeys(view, PAIR.privateKeyPem);
    assert.equal(plain.nodes[0]!.keyExp, 'new');
    assert.equal(plain.nodes[0]!.oldKeyExp, 'old');
    assert.equal(plain.nodes[0]!.newKeyEnableAt, 5);
    assert.equal('keyExpEnc' in plain.nodes[0]!, false);
  });

  test('a PEM that is not a key is a coded error', () => {
    assert.throws(() => toPrivateKey('nope'), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_AUTH');
    assert.throws(() => toPublicKey('nope'), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_AUTH');
  });
});

describe('request auth - admin token and node signatures', () => {
  let dir: string;
  let now = 1_700_000_000_000;
  let auth: RequestAuth;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ibp-reg-auth-'));
    writeFileSync(join(dir, 'ibms.admin.token'), 'tok-1\n');
    writeFileSync(join(dir, 'ECIF.pub'), PAIR.publicKeyPem);
    auth = new RequestAuth({ keysDir: dir, tokenPath: join(dir, 'ibms.admin.token'), now: () => now });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refused = (fn: () => unknown, re: RegExp): void =>
    assert.throws(fn, (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_AUTH' && re.test(e.message));

  test('admin calls need the bearer token of keys/ibms.admin.token', () => {
    auth.checkAdmin(fakeReq({ authorization: 'Bearer tok-1' }));
    refused(() => auth.checkAdmin(fakeReq({})), /without "Authorization/);
    refused(() => auth.checkAdmin(fakeReq({ authorization: 'Bearer tok-2' })), /wrong admin token/);
    refused(() => auth.checkAdmin(fakeReq({ authorization: 'Basic tok-1' })), /without/);
  });

  test('a replaced token file takes effect without a restart', () => {
    writeFileSync(join(dir, 'ibms.admin.token'), 'tok-new\n');
    utimesSync(join(dir, 'ibms.admin.token'), new Date(), new Date(Date.now() + 5000));
    auth.checkAdmin(fakeReq({ authorization: 'Bearer tok-new' }));
    refused(() => auth.checkAdmin(fakeReq({ authorization: 'Bearer tok-1' })), /wrong/);
  });

  test('a node is who its signature says, within 300 s of the registry clock', () => {
    const ok = signNodeRequest('ECIF', PAIR.privateKeyPem, 'GET', '/v1/view', now);
    assert.equal(auth.checkNode(fakeReq(ok), 'GET', '/v1/view'), 'ECIF');
    refused(() => auth.checkNode(fakeReq(ok), 'GET', '/v1/view?index=1'), /bad signature/);
    refused(() => auth.checkNode(fakeReq(signNodeRequest('ECIF', OTHER.privateKeyPem, 'GET', '/v1/view', now)), 'GET', '/v1/view'), /bad signature/);
    refused(() => auth.checkNode(fakeReq(signNodeRequest('ECIF', PAIR.privateKeyPem, 'GET', '/v1/view', now - 301_000)), 'GET', '/v1/view'), /301 s away/);
    refused(() => auth.checkNode(fakeReq(signNodeRequest('CORE', PAIR.privateKeyPem, 'GET', '/v1/view', now)), 'GET', '/v1/view'), /no public key for node CORE: run ibpgenrsakeys CORE/);
    refused(() => auth.checkNode(fakeReq({ 'x-ibp-node': 'ECIF' }), 'GET', '/v1/view'), /without X-IBP-Node/);
    refused(() => auth.checkNode(fakeReq({ ...ok, 'x-ibp-node': '../etc/x' }), 'GET', '/v1/view'), /not a node name/);
    refused(() => auth.checkNode(fakeReq({ ...ok, 'x-ibp-time': '12abc' }), 'GET', '/v1/view'), /not epoch milliseconds/);
    now += 10;
  });
});
