/**
 * Message security framing (docs/protocol.md §Security): key derivation, the key check value, the sealed
 * payload layout with the documented test vectors, refusal of tampered, truncated, replayed and wrongly-keyed
 * payloads, the rotation windows, and the frame numbering of a whole transaction (TxSecurity).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { IbpError } from '../../../src/core/errors.js';
import { FrameType } from '../../../src/protocol/ib2-frames.js';
import { acceptedKey, deriveKey, sendingKeyExp, type NodeKeys } from '../../../src/protocol/security/keys.js';
import {
  DIR_C2S, DIR_S2C, MODE_DEFLATE, MODE_ENCRYPT, MODE_SIGN, aadBytes, open, seal, type AadFields,
} from '../../../src/protocol/security/seal.js';
import { TxSecurity } from '../../../src/protocol/security/tx-security.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY = deriveKey('test-node-key');
const OTHER = deriveKey('another-key');
const NONCE = hex('000102030405060708090a0b0c0d0e0f');
const IV = hex('a0a1a2a3a4a5a6a7a8a9aaab');
const BODY = Buffer.from('hello, IBP');
const aad = (o: Partial<AadFields> = {}): AadFields => ({ dir: DIR_C2S, type: FrameType.REQUEST, nonce: NONCE, seq: 1, frameNo: 0, ctx: Buffer.from('ctx'), ...o });

/** The vectors of docs/protocol.md §Security (key text "test-node-key", AAD as in `aad()`, IV a0..ab). */
const V = {
  enc: '2e844a6d26a3a758761ec56bbad3a4183beb4aacd35986d3b93c9688f0235edb',
  mac: 'abc6d17e3c83bb07dfb58a82aa38bfbc54f148c264024ea1951d8590d7000a5d',
  kcv: '0ffbab8b1d1b1847',
  aadSign: '4942503253454331 01 05 01 0ffbab8b1d1b1847 000102030405060708090a0b0c0d0e0f 00000001 00000000 00000003 637478',
  sign: '01 0ffbab8b1d1b1847 68656c6c6f2c20494250 3be9db82f2f6a4ba5ac7dfc0033649b5',
  encrypt: '04 0ffbab8b1d1b1847 a0a1a2a3a4a5a6a7a8a9aaab 544fd485156ed2b6980f 8f5a99031e9e87149fe023216d37aa77',
  signEncrypt: '05 0ffbab8b1d1b1847 a0a1a2a3a4a5a6a7a8a9aaab 544fd485156ed2b6980f 3bd219240a18ea3e9796d4b8e7ec02da',
  /** 64 × "a", deflated, encrypted and signed. */
  all: '07 0ffbab8b1d1b1847 a0a1a2a3a4a5a6a7a8a9aaab 77661ce57a42 1ae44df9479c8176eafd2e5ac2d6ea87',
};

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IbpError, `expected an IbpError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a refusal');
}

const opener = (agreed: number, a: AadFields = aad(), keys: NodeKeys = { keyExp: 'test-node-key', newKeyEnableAt: 0, oldKeyDisableAt: 0 }) => ({
  agreed, aad: a, what: 'REQUEST', maxPlainBytes: 1 << 20,
  resolveKey: (p: Buffer, at: number) => {
    const k = acceptedKey(keys, p, at, 0);
    if (!k) throw new IbpError('IBP_ERR_SEC_UNKNOWN_KEY', 'unknown');
    return k;
  },
});

describe('security keys', () => {
  it('derives the AES and HMAC keys with HKDF-SHA256 and distinct labels, and the 8-byte check value', () => {
    assert.equal(KEY.encBytes.toString('hex'), V.enc);
    assert.equal(KEY.macBytes.toString('hex'), V.mac);
    assert.equal(KEY.kcv.toString('hex'), V.kcv);
    // The same numbers straight from node:crypto, as the document states them.
    assert.equal(Buffer.from(hkdfSync('sha256', 'test-node-key', 'IBP2 security v1', 'IBP2 aes-256-gcm', 32)).toString('hex'), V.enc);
    assert.equal(Buffer.from(hkdfSync('sha256', 'test-node-key', 'IBP2 security v1', 'IBP2 hmac-sha256', 32)).toString('hex'), V.mac);
    assert.equal(createHmac('sha256', 'test-node-key').update('IBP-KCV').digest('hex').slice(0, 16), V.kcv);
    assert.notEqual(OTHER.kcv.toString('hex'), V.kcv);
  });

  it('rotation: initiators switch at newKeyEnableAt, processors accept the old key until oldKeyDisableAt', () => {
    const k: NodeKeys = { keyExp: 'new', oldKeyExp: 'old', newKeyEnableAt: 100, oldKeyDisableAt: 200 };
    assert.equal(sendingKeyExp(k, 99.9), 'old');
    assert.equal(sendingKeyExp(k, 100), 'new');
    assert.equal(sendingKeyExp({ keyExp: 'only', newKeyEnableAt: 0, oldKeyDisableAt: 0 }, 5), 'only');
    const oldKcv = deriveKey('old').kcv;
    const newKcv = deriveKey('new').kcv;
    assert.equal(acceptedKey(k, newKcv, 0, 50), deriveKey('new'));
    assert.equal(acceptedKey(k, oldKcv, 0, 199.9), deriveKey('old'));
    assert.equal(acceptedKey(k, oldKcv, 0, 200), undefined);
    assert.equal(acceptedKey(k, deriveKey('stranger').kcv, 0, 50), undefined);
  });
});

describe('sealed payload', () => {
  it('matches the documented vectors: AAD, sign, encrypt, sign+encrypt, and all three with deflate', () => {
    assert.equal(aadBytes(aad(), MODE_SIGN, KEY.kcv).toString('hex'), hex(V.aadSign).toString('hex'));
    assert.equal(seal(BODY, { agreed: MODE_SIGN, key: KEY, minCompressSize: 0, aad: aad() }).toString('hex'), hex(V.sign).toString('hex'));
    assert.equal(seal(BODY, { agreed: MODE_ENCRYPT, key: KEY, minCompressSize: 0, aad: aad(), iv: IV }).toString('hex'), hex(V.encrypt).toString('hex'));
    assert.equal(seal(BODY, { agreed: MODE_SIGN | MODE_ENCRYPT, key: KEY, minCompressSize: 0, aad: aad(), iv: IV }).toString('hex'), hex(V.signEncrypt).toString('hex'));
    for (const [v, mode] of [[V.sign, MODE_SIGN], [V.encrypt, MODE_ENCRYPT], [V.signEncrypt, MODE_SIGN | MODE_ENCRYPT]] as const) {
      assert.deepEqual(open(hex(v), opener(mode)).data, BODY);
    }
    // Deflate output may differ between zlib versions: the vector must open, and a fresh seal must round-trip.
    const a64 = Buffer.from('a'.repeat(64));
    const all = MODE_SIGN | MODE_ENCRYPT | MODE_DEFLATE;
    assert.deepEqual(open(hex(V.all), opener(all)).data, a64);
    const s = seal(a64, { agreed: all, key: KEY, minCompressSize: 16, aad: aad() });
    assert.equal(s[0], 0x07);
    assert.ok(s.length < 1 + 8 + 12 + 64 + 16, 'the body was compressed');
    assert.deepEqual(open(s, opener(all)).data, a64);
  });

  it('compresses only at or above the threshold and only when smaller; compression alone is one mode byte', () => {
    const a64 = Buffer.from('a'.repeat(64));
    assert.deepEqual(seal(a64, { agreed: MODE_DEFLATE, key: undefined, minCompressSize: 64, aad: aad() }), Buffer.concat([Buffer.from([MODE_DEFLATE]), deflateRawSync(a64)]));
    assert.deepEqual(seal(a64, { agreed: MODE_DEFLATE, key: undefined, minCompressSize: 65, aad: aad() }), Buffer.concat([Buffer.from([0]), a64]));
    const noise = Buffer.from('q9Z'); // deflate would grow it
    assert.deepEqual(seal(noise, { agreed: MODE_DEFLATE, key: undefined, minCompressSize: 0, aad: aad() }), Buffer.concat([Buffer.from([0]), noise]));
    assert.deepEqual(open(Buffer.concat([Buffer.from([0]), noise]), opener(MODE_DEFLATE)).data, noise);
  });

  it('refuses every single flipped byte with IBP_ERR_SEC_BAD_MAC (or a coded mode/key error for the header bytes)', () => {
    for (const [v, mode] of [[V.sign, MODE_SIGN], [V.signEncrypt, MODE_SIGN | MODE_ENCRYPT]] as const) {
      const good = hex(v);
      for (let i = 0; i < good.length; i++) {
        const bad = Buffer.from(good);
        bad[i] = bad[i]! ^ 0x01;
        const c = code(() => open(bad, opener(mode)));
        const expected = i === 0 ? ['IBP_ERR_SEC_FLAGS_MISMATCH'] : i <= 8 ? ['IBP_ERR_SEC_UNKNOWN_KEY'] : ['IBP_ERR_SEC_BAD_MAC'];
        assert.ok(expected.includes(c), `byte ${i}: ${c}`);
      }
    }
  });

  it('refuses truncated payloads: shorter than the fixed part is MALFORMED, any shorter data or tag is BAD_MAC', () => {
    const good = hex(V.signEncrypt);
    assert.equal(code(() => open(good.subarray(0, 0), opener(MODE_SIGN | MODE_ENCRYPT))), 'IBP_ERR_SEC_MALFORMED');
    assert.equal(code(() => open(good.subarray(0, 1 + 8 + 12 + 15), opener(MODE_SIGN | MODE_ENCRYPT))), 'IBP_ERR_SEC_MALFORMED');
    for (let n = 1 + 8 + 12 + 16; n < good.length; n++) {
      assert.equal(code(() => open(good.subarray(0, n), opener(MODE_SIGN | MODE_ENCRYPT))), 'IBP_ERR_SEC_BAD_MAC', `cut to ${n}`);
    }
  });

  it('refuses a payload replayed in another place: other direction, frame type, transaction, frame number, connection or context', () => {
    const good = hex(V.sign);
    for (const other of [
      aad({ dir: DIR_S2C }), aad({ type: FrameType.RESPONSE }), aad({ seq: 2 }), aad({ frameNo: 1 }),
      aad({ nonce: Buffer.alloc(16) }), aad({ ctx: Buffer.from('ctX') }),
    ]) {
      assert.equal(code(() => open(good, opener(MODE_SIGN, other))), 'IBP_ERR_SEC_BAD_MAC');
    }
  });

  it('refuses a wrong key (UNKNOWN_KEY), a protection other than agreed (FLAGS_MISMATCH), unknown mode bits and a bad deflate stream (MALFORMED)', () => {
    const wrong = seal(BODY, { agreed: MODE_SIGN, key: OTHER, minCompressSize: 0, aad: aad() });
    assert.equal(code(() => open(wrong, opener(MODE_SIGN))), 'IBP_ERR_SEC_UNKNOWN_KEY');
    assert.equal(code(() => open(hex(V.sign), opener(MODE_SIGN | MODE_ENCRYPT))), 'IBP_ERR_SEC_FLAGS_MISMATCH');
    assert.equal(code(() => open(Buffer.concat([Buffer.from([0]), BODY]), opener(MODE_SIGN))), 'IBP_ERR_SEC_FLAGS_MISMATCH');
    assert.equal(code(() => open(Buffer.from([0x02, 1, 2]), opener(0))), 'IBP_ERR_SEC_FLAGS_MISMATCH');
    assert.equal(code(() => open(Buffer.from([0x80, 1]), opener(MODE_SIGN))), 'IBP_ERR_SEC_MALFORMED');
    assert.equal(code(() => open(Buffer.from([0x02, 0xff, 0xff]), opener(MODE_DEFLATE))), 'IBP_ERR_SEC_MALFORMED');
  });

  it('refuses a compressed body that inflates past the limit (IBP_ERR_PROTO_FRAME_TOO_LARGE)', () => {
    const bomb = seal(Buffer.alloc(1 << 20), { agreed: MODE_DEFLATE, key: undefined, minCompressSize: 0, aad: aad() });
    assert.ok(bomb.length < 16_384, `${bomb.length} bytes inflate to 1 MiB`);
    assert.equal(code(() => open(bomb, { ...opener(MODE_DEFLATE), maxPlainBytes: 4096 })), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
  });
});

describe('TxSecurity', () => {
  const flags = { sign: true, compress: true, encrypt: true };
  const keys: NodeKeys = { keyExp: 'test-node-key', newKeyEnableAt: 0, oldKeyDisableAt: 0 };
  const pair = (seq = 3, server: Partial<NodeKeys> = {}) => ({
    c: new TxSecurity({ role: 'client', flags, nonce: NONCE, seq, keys, node: 'SRV', minCompressSize: 0, maxBodyBytes: 1 << 20 }),
    s: new TxSecurity({ role: 'server', flags, nonce: NONCE, seq, keys: { ...keys, ...server }, node: 'SRV', minCompressSize: 0, maxBodyBytes: 1 << 20 }),
  });
  const pre = Buffer.from('pre-request payload');
  const head = Buffer.from('response head');

  it('carries request files, request, response and response files both ways, each bound to its place', () => {
    const { c, s } = pair();
    const fb = c.sealFileBegin(Buffer.from('begin'));
    const fd = c.sealFileData(Buffer.from('chunk'));
    const rq = c.sealRequest(BODY, pre);
    assert.deepEqual(s.openFileBegin(fb), Buffer.from('begin'));
    assert.deepEqual(s.openFileData(fd), Buffer.from('chunk'));
    assert.deepEqual(s.openRequest(rq, pre), BODY);
    const rs = s.sealResponse(Buffer.from('answer'), head);
    const rfd = s.sealFileData(Buffer.from('back'));
    assert.deepEqual(c.openResponse(rs, head), Buffer.from('answer'));
    assert.deepEqual(c.openFileData(rfd), Buffer.from('back'));
  });

  it('refuses frames swapped in order, a request of another transaction, and a response head that was changed', () => {
    const a = pair();
    const d1 = a.c.sealFileData(Buffer.from('one'));
    const d2 = a.c.sealFileData(Buffer.from('two'));
    assert.equal(code(() => a.s.openFileData(d2)), 'IBP_ERR_SEC_BAD_MAC');
    void d1;
    const b = pair(3);
    const other = pair(4);
    assert.equal(code(() => other.s.openRequest(b.c.sealRequest(BODY, pre), pre)), 'IBP_ERR_SEC_BAD_MAC');
    const e = pair();
    e.s.openRequest(e.c.sealRequest(BODY, pre), pre);
    const rs = e.s.sealResponse(Buffer.from('answer'), head);
    assert.equal(code(() => e.c.openResponse(rs, Buffer.from('response heaD'))), 'IBP_ERR_SEC_BAD_MAC');
  });

  it('a client without a key fails with IBP_ERR_SEC_NO_KEY before sealing anything', () => {
    assert.equal(code(() => new TxSecurity({ role: 'client', flags, nonce: NONCE, seq: 0, keys: undefined, node: 'SRV', minCompressSize: 0, maxBodyBytes: 1 }))
      , 'IBP_ERR_SEC_NO_KEY');
  });

  it('the server asks for fresh keys once when a message names a key it does not hold yet', () => {
    const { c } = pair();
    let asked = 0;
    const s = new TxSecurity({
      role: 'server', flags, nonce: NONCE, seq: 3, keys: { keyExp: 'older', newKeyEnableAt: 0, oldKeyDisableAt: 0 }, node: 'SRV', minCompressSize: 0,
      maxBodyBytes: 1 << 20, refreshKeys: () => { asked++; return keys; },
    });
    assert.deepEqual(s.openRequest(c.sealRequest(BODY, pre), pre), BODY);
    assert.equal(asked, 1);
  });
});
