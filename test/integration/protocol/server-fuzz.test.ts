/**
 * Mutated byte streams of all three protocols against a live server: every connection ends closed, every
 * warning carries a registered error code, nothing escapes, and the server still serves afterwards.
 * The mutator is the shared one (test/helpers/mutator.ts, also behind `npm run bench:fuzz`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbpError, isErrorCode } from '../../../src/core/errors.js';
import { encodeIb1Request } from '../../../src/protocol/ib1-codec.js';
import { encodeFileBegin, encodeFileData, encodePreRequest, encodeRequest } from '../../../src/protocol/ib2-frames.js';
import { Ib2Connection } from '../../../src/protocol/index.js';
import { RawPeer, startServer, type TestServer } from './harness.js';
import { HTTP_DICTIONARY } from '../../helpers/fuzz-corpus.js';
import { mutate, rng } from '../../helpers/mutator.js';

const SEEDS: Buffer[] = [
  Buffer.concat([encodePreRequest({ clientNode: 'F', app: 'echo', jnlsno: 'J', trace: false, fileCount: 0, pipelined: true }), encodeRequest(Buffer.from('{"x":1}'))]),
  Buffer.concat([
    encodePreRequest({ clientNode: 'F', app: 'echo_files', jnlsno: 'J', trace: true, fileCount: 1, pipelined: true }),
    encodeFileBegin({ index: 0, size: 4, name: 'f.txt' }), encodeFileData(Buffer.from('data')), encodeRequest(Buffer.from('r')),
  ]),
  Buffer.concat([encodeIb1Request('echo', Buffer.from('one')), encodeIb1Request('meta', Buffer.alloc(0))]),
  Buffer.from('POST /ibp/echo HTTP/1.1\r\nHost: x\r\nx-ibp-trace: 1\r\nContent-Length: 5\r\n\r\nhello'),
  Buffer.from('PUT /ibp/file/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz'),
];

describe('server fuzzing', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ limits: { readTimeoutMs: 200, maxBodyBytes: 4096, maxFramePayloadBytes: 8192, maxFileBytes: 4096 } });
  });
  after(() => srv.close());

  it('server fuzz - 300 mutated IB2/IB1/HTTP streams: all closed, only coded errors, still serving after', async () => {
    const r = rng(4242);
    const batch = 30;
    for (let round = 0; round < 300 / batch; round++) {
      await Promise.all(Array.from({ length: batch }, async () => {
        const p = await RawPeer.connect(srv.port);
        const bytes = mutate(r, SEEDS[Math.floor(r() * SEEDS.length)]!, { corpus: SEEDS, dictionary: HTTP_DICTIONARY });
        let at = 0;
        while (at < bytes.length) {
          const n = 1 + Math.floor(r() * 40);
          p.write(bytes.subarray(at, at + n));
          at += n;
        }
        p.socket.end();
        await p.waitClosed(5000);
      }));
    }
    for (const rec of srv.log.records) {
      const err = rec.obj.err as IbpError | undefined;
      if (rec.level === 'warn' && err) {
        assert.ok(err instanceof IbpError, `warning without IbpError: ${rec.msg}`);
        assert.ok(isErrorCode(err.code), err.code);
      }
    }
    assert.ok(srv.log.warnCodes().length > 50, 'the mutations produced protocol errors');
    await Promise.all(srv.conns.map((c) => c.closed));
    const c = await Ib2Connection.connect({ host: '127.0.0.1', port: srv.port, connectTimeoutMs: 2000, fileDir: srv.fileDir });
    const res = await c.call({ clientNode: 'F', app: 'echo', jnlsno: 'J', body: Buffer.from('alive'), timeoutMs: 2000 });
    assert.equal(res.body.toString(), 'alive');
    await c.close();
  });
});
