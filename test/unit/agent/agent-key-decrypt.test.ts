import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, publicEncrypt, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decryptKeyExp, loadNodePrivateKey } from '../../../src/agent/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { encryptForNode } from '../../../src/registry/index.js';
import { tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));

function keysDir(): string {
  const t = tempDir('ibp-agent-keys-');
  temps.push(t.cleanup);
  const dir = join(t.dir, 'keys');
  mkdirSync(dir);
  return dir;
}
function pair(): { pub: KeyObject; pem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { pub: publicKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
function oaep(pub: KeyObject, text: string): string {
  return publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(text)).toString('base64');
}
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof IbpError ? err.code : `not IbpError: ${String(err)}`;
  }
  return undefined;
}

describe('agent key decryption', () => {
  const me = pair();
  const dir = keysDir();
  writeFileSync(join(dir, 'CORE.key'), me.pem, { mode: 0o600 });

  it('agent keys - a key encrypted with RSA-OAEP SHA-256 under the node public key decrypts to the key', () => {
    const k = loadNodePrivateKey(dir, 'CORE');
    assert.equal(k.path, join(dir, 'CORE.key'));
    assert.equal(decryptKeyExp(k.key, oaep(me.pub, 'ecif-key-0123456789abcdef')), 'ecif-key-0123456789abcdef');
    assert.equal(decryptKeyExp(k.key, oaep(me.pub, 'clé ünïcode')), 'clé ünïcode');
  });

  it("agent keys - the registry's encryptForNode output decrypts (the two ends agree)", () => {
    const k = loadNodePrivateKey(dir, 'CORE');
    assert.equal(decryptKeyExp(k.key, encryptForNode(me.pub, 'k-from-registry')), 'k-from-registry');
  });

  it("agent keys - '' (no key) stays ''", () => {
    assert.equal(decryptKeyExp(loadNodePrivateKey(dir, 'CORE').key, ''), '');
  });

  it('agent keys - a key encrypted for another node fails with IBP_ERR_AGENT_KEY', () => {
    const other = pair();
    const k = loadNodePrivateKey(dir, 'CORE');
    assert.equal(codeOf(() => decryptKeyExp(k.key, oaep(other.pub, 'secret'))), 'IBP_ERR_AGENT_KEY');
    assert.equal(codeOf(() => decryptKeyExp(k.key, 'not*base64!')), 'IBP_ERR_AGENT_KEY');
  });

  it('agent keys - a missing key file fails with IBP_ERR_AGENT_KEY telling how to make one', () => {
    assert.throws(() => loadNodePrivateKey(dir, 'GW'), (err: unknown) => {
      assert.ok(err instanceof IbpError);
      assert.equal(err.code, 'IBP_ERR_AGENT_KEY');
      assert.match(err.message, /GW\.key/);
      assert.match(err.message, /ibpgenrsakeys GW/);
      return true;
    });
  });

  it('agent keys - a file that is not an RSA private key fails with IBP_ERR_AGENT_KEY', () => {
    writeFileSync(join(dir, 'BAD.key'), 'hello\n');
    assert.equal(codeOf(() => loadNodePrivateKey(dir, 'BAD')), 'IBP_ERR_AGENT_KEY');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(join(dir, 'EC.key'), ec);
    assert.equal(codeOf(() => loadNodePrivateKey(dir, 'EC')), 'IBP_ERR_AGENT_KEY');
  });
});
