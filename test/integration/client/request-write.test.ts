/**
 * Both sides of the in-doubt line, made deterministic: the connection is destroyed at one exact point of the
 * client's own progress (right after its last file bytes are handed to the kernel, before its REQUEST write),
 * or once the server is running the transaction.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { Ib2Connection } from '../../../src/protocol/index.js';
import { startServer, type TestServer } from '../protocol/harness.js';

describe('the REQUEST write is the in-doubt line', () => {
  let srv: TestServer;
  let conn: Ib2Connection | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ibp-reqwrite-'));
  const file = join(dir, 'doc_0123456789.tmp');
  before(async () => {
    writeFileSync(file, 'three');
    srv = await startServer({
      apps: {
        async hold() {
          conn?.destroy(); // the server has the whole request and runs it: the client loses the connection now
        },
      },
    });
  });
  after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function failedCall(app: string, files: string[]): Promise<IbpError> {
    conn = await Ib2Connection.connect({ host: '127.0.0.1', port: srv.port, connectTimeoutMs: 2000, fileDir: dir });
    try {
      await conn.call({ clientNode: 'C', app, jnlsno: 'J', body: Buffer.from('x'), files, timeoutMs: 5000 });
    } catch (err) {
      assert.ok(err instanceof IbpError);
      return err;
    } finally {
      conn.destroy();
    }
    assert.fail('the call should fail');
  }

  it('lost after the last file bytes were written, before the REQUEST: NOT_SENT, and the server ran nothing', async () => {
    // One-shot: the first FILE_DATA frame written in this process (the client's push) destroys its socket
    // right after it is handed to the kernel; the client's next write would be the REQUEST.
    const write = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
      const chunk = args[0];
      const r = (write as (...a: unknown[]) => boolean).apply(this, args);
      if (Buffer.isBuffer(chunk) && chunk.subarray(0, 4).equals(Buffer.from('IB2\x04', 'latin1'))) {
        net.Socket.prototype.write = write;
        this.destroy();
      }
      return r;
    } as typeof write;
    const runs = srv.runs.length;
    let err: IbpError;
    try {
      err = await failedCall('echo_files', [file]);
    } finally {
      net.Socket.prototype.write = write;
    }
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST', err.message);
    assert.equal(err.commStatus, 'NOT_SENT', 'the REQUEST was never written');
    assert.equal(err.retryable, true);
    assert.equal(srv.runs.length, runs);
  });

  it('lost once the server runs the transaction: ON_SENDING (in doubt)', async () => {
    const runs = srv.runs.length;
    const err = await failedCall('hold', [file]);
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST', err.message);
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.equal(err.inDoubt, true);
    assert.equal(srv.runs.length, runs + 1, 'it did run');
  });
});
