import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { IbpError } from '../../../src/core/errors.js';
import {
  clientProof, FrameSigner, FrameVerifier, newNonce, serverProof, sessionKeys,
} from '../../../src/rcmd/session-keys.js';
import {
  encodeHeader, FLAG_MAC, FrameDecoder, FrameType, MAX_BODY, MAX_JSON_BODY, parseJsonBody, type RawFrame,
} from '../../../src/rcmd/wire.js';

const frame = (type: number, body: Buffer, mac?: Buffer): Buffer =>
  Buffer.concat([encodeHeader(type, body.length, mac !== undefined), body, mac ?? Buffer.alloc(0)]);

function decodeAll(bytes: Buffer, chunk = bytes.length): RawFrame[] {
  const d = new FrameDecoder();
  const out: RawFrame[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(...d.push(bytes.subarray(i, i + chunk)));
  return out;
}

const frameError = (re: RegExp) => (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_RCMD_FRAME' && re.test(e.message);

describe('rcmd wire - framing', () => {
  test('rcmd wire - the header is magic IC, type, flags, big-endian length (byte for byte)', () => {
    assert.equal(encodeHeader(FrameType.EXEC, 0x0102, true).toString('hex'), '4943' + '10' + '01' + '00000102');
    assert.equal(encodeHeader(FrameType.HELLO, 39, false).toString('hex'), '494301' + '00' + '00000027');
  });

  test('rcmd wire - frames split at every byte boundary and glued together decode the same', () => {
    const mac = randomBytes(32);
    const bytes = Buffer.concat([
      frame(FrameType.EXEC, Buffer.from('{"cmd":"ls"}')),
      frame(FrameType.DATA, randomBytes(3000), mac),
      frame(FrameType.END, Buffer.alloc(0)),
    ]);
    for (const chunk of [1, 2, 7, 8, 9, 100, bytes.length]) {
      const got = decodeAll(bytes, chunk);
      assert.deepEqual(got.map((f) => f.type), [FrameType.EXEC, FrameType.DATA, FrameType.END], `chunk ${chunk}`);
      assert.equal(got[0]!.body.toString(), '{"cmd":"ls"}');
      assert.equal(got[1]!.body.length, 3000);
      assert.deepEqual(got[1]!.mac, mac);
      assert.equal(got[0]!.mac, undefined);
      assert.equal(got[2]!.body.length, 0);
    }
  });

  test('rcmd wire - a bad magic fails on its first byte, before any length is trusted', () => {
    const d = new FrameDecoder();
    assert.throws(() => d.push(Buffer.from('G')), frameError(/bad magic 0x47/));
    assert.throws(() => d.push(Buffer.from('ET / HTTP/1.1\r\n')), frameError(/bad magic/), 'the decoder stays failed');
    assert.throws(() => new FrameDecoder().push(Buffer.from('IX')), frameError(/bad magic/));
    assert.throws(() => new FrameDecoder().push(Buffer.from('SSH-2.0-OpenSSH\r\n')), frameError(/not an ibcmd peer/));
  });

  test('rcmd wire - unknown types, reserved flags and oversized lengths are refused from the header alone', () => {
    const h = (type: number, flags: number, len: number) => {
      const b = Buffer.from([0x49, 0x43, type, flags, 0, 0, 0, 0]);
      b.writeUInt32BE(len, 4);
      return b;
    };
    assert.throws(() => new FrameDecoder().push(h(0x55, 0, 0)), frameError(/unknown frame type 0x55/));
    assert.throws(() => new FrameDecoder().push(h(0x00, 0, 0)), frameError(/unknown frame type 0x00/));
    assert.throws(() => new FrameDecoder().push(h(FrameType.EXEC, 0x02, 0)), frameError(/reserved flag bits/));
    assert.throws(() => new FrameDecoder().push(h(FrameType.EXEC, FLAG_MAC | 0x80, 0)), frameError(/reserved flag bits/));
    assert.throws(() => new FrameDecoder().push(h(FrameType.DATA, 0, MAX_BODY + 1)), frameError(/over 1048576/));
    assert.throws(() => new FrameDecoder().push(h(FrameType.DATA, 0, 0xffffffff)), frameError(/over/));
    assert.throws(() => encodeHeader(FrameType.DATA, MAX_BODY + 1, false), frameError(/over/));
  });

  test('rcmd wire - a truncated frame is held, not delivered', () => {
    const bytes = frame(FrameType.EXEC, Buffer.from('{"cmd":"ls"}'));
    const d = new FrameDecoder();
    assert.deepEqual(d.push(bytes.subarray(0, bytes.length - 1)), []);
    assert.equal(d.buffered, bytes.length - 1);
    assert.equal(d.push(bytes.subarray(bytes.length - 1)).length, 1);
    assert.equal(d.buffered, 0);
  });

  test('rcmd wire - random garbage never decodes into a frame that is not well-formed, and never hangs', () => {
    for (let i = 0; i < 2000; i++) {
      const junk = randomBytes(1 + (i % 64));
      if (i % 3 === 0) { junk[0] = 0x49; if (junk.length > 1) junk[1] = 0x43; }
      const d = new FrameDecoder();
      try {
        for (const f of d.push(junk)) assert.ok(f.body.length <= MAX_BODY);
      } catch (err) {
        assert.ok(err instanceof IbpError && err.code === 'IBP_ERR_RCMD_FRAME');
      }
    }
  });

  test('rcmd wire - JSON bodies must be objects under the JSON size limit', () => {
    assert.deepEqual(parseJsonBody(Buffer.from('{"cmd":"ls"}'), 'EXEC'), { cmd: 'ls' });
    assert.throws(() => parseJsonBody(Buffer.from('[1]'), 'EXEC'), frameError(/not a JSON object/));
    assert.throws(() => parseJsonBody(Buffer.from('null'), 'EXEC'), frameError(/not a JSON object/));
    assert.throws(() => parseJsonBody(Buffer.from('{"cmd":'), 'EXEC'), frameError(/not JSON/));
    assert.throws(() => parseJsonBody(Buffer.from([0xff, 0xfe]), 'EXEC'), frameError(/not JSON/));
    assert.throws(() => parseJsonBody(Buffer.alloc(MAX_JSON_BODY + 1, 0x20), 'PUT'), frameError(/PUT body of 65537 bytes/));
  });
});

describe('rcmd wire - authentication and frame MACs', () => {
  const secret = Buffer.from('0123456789abcdef0123456789abcdef');

  test('rcmd wire - client and server proofs differ, depend on both nonces and on the secret', () => {
    const ns = newNonce();
    const nc = newNonce();
    const c = clientProof(secret, ns, nc);
    assert.equal(c.length, 32);
    assert.notDeepEqual(c, serverProof(secret, ns, nc), 'a proof cannot be reflected');
    assert.notDeepEqual(c, clientProof(secret, newNonce(), nc));
    assert.notDeepEqual(c, clientProof(secret, ns, newNonce()));
    assert.notDeepEqual(c, clientProof(Buffer.from('another secret of at least 32 byt'), ns, nc));
    const k = sessionKeys(secret, ns, nc);
    assert.notDeepEqual(k.clientToServer, k.serverToClient);
  });

  test('rcmd wire - a known test vector (HMAC-SHA256 over label, Ns, Nc)', () => {
    const ns = Buffer.alloc(32, 1);
    const nc = Buffer.alloc(32, 2);
    assert.equal(clientProof(secret, ns, nc).toString('hex'), clientProofVector());
  });

  test('rcmd wire - frames verify in order; tampered, replayed, reordered or unsigned frames are refused', () => {
    const key = randomBytes(32);
    const signer = new FrameSigner(key);
    const frames = ['a', 'b', 'c'].map((s) => {
      const body = Buffer.from(s);
      const header = encodeHeader(FrameType.EXEC, body.length, true);
      return { header, body, mac: signer.sign(header, body) };
    });
    const badMac = (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_RCMD_BAD_MAC';
    const v = new FrameVerifier(key);
    v.verify(frames[0]!.header, frames[0]!.body, frames[0]!.mac);
    assert.throws(() => v.verify(frames[0]!.header, frames[0]!.body, frames[0]!.mac), badMac, 'replay in the same session');

    const v2 = new FrameVerifier(key);
    assert.throws(() => v2.verify(frames[1]!.header, frames[1]!.body, frames[1]!.mac), badMac, 'out of order');

    const v3 = new FrameVerifier(key);
    const tampered = Buffer.from(frames[0]!.body);
    tampered[0] ^= 1;
    assert.throws(() => v3.verify(frames[0]!.header, tampered, frames[0]!.mac), badMac, 'tampered body');
    const v4 = new FrameVerifier(key);
    const header = Buffer.from(frames[0]!.header);
    header[2] = FrameType.PUT;
    assert.throws(() => v4.verify(header, frames[0]!.body, frames[0]!.mac), badMac, 'tampered type');
    assert.throws(() => new FrameVerifier(key).verify(frames[0]!.header, frames[0]!.body, undefined), badMac, 'no MAC');
    assert.throws(() => new FrameVerifier(randomBytes(32)).verify(frames[0]!.header, frames[0]!.body, frames[0]!.mac), badMac, 'another session');
  });
});

/** HMAC-SHA256("0123456789abcdef0123456789abcdef", "ibcmd/1 client" ‖ 01×32 ‖ 02×32), computed with `openssl dgst -sha256 -hmac` (see docs/rcmd.md). */
function clientProofVector(): string {
  return '70f11fd0b181708c5f10eac8b359592de24f0f972678b380b447c6bab458e51f';
}
