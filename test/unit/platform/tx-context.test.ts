import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pino from 'pino';
import { IbpError } from '../../../src/core/errors.js';
import { TxContext } from '../../../src/platform/tx-context.js';

function makeCtx(fileDir: string, onAhead: () => void = () => undefined): TxContext {
  return new TxContext({
    tx: {
      protocol: 'IB2',
      clientNode: 'CORE',
      clientIp: '127.0.0.1',
      clientPort: 40000,
      app: 'A1',
      jnlsno: 'J1',
      trace: false,
      body: Buffer.from('{"x":1}'),
      requestFiles: [join(fileDir, 'contract_abcdefghij.tmp'), join(fileDir, 'photo_0123456789.tmp')],
    },
    thisNode: 'ECIF',
    commTimeoutSec: 10,
    appTimeoutSec: 15,
    workerIndex: 1,
    workerCount: 2,
    fileDir,
    kv: (k) => (k === 'hsm' ? '10.0.0.1:1500' : undefined),
    log: () => pino({ enabled: false }),
    sendAhead: onAhead,
  });
}

test('tx context - request accessors, response body forms, files by id, KV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-ctx-'));
  try {
    const ctx = makeCtx(dir);
    assert.deepEqual(ctx.requestJson(), { x: 1 });
    assert.equal(ctx.requestText(), '{"x":1}');
    ctx.respond({ ok: true });
    assert.equal(ctx.responseBody().toString(), '{"ok":true}');
    ctx.respond('a');
    ctx.appendResponse('b');
    ctx.appendResponse(Buffer.from('c'));
    assert.equal(ctx.responseBody().toString(), 'abc');
    assert.equal(ctx.requestFileById('photo'), join(dir, 'photo_0123456789.tmp'));
    assert.equal(ctx.requestFileById('nope'), undefined);
    assert.equal(ctx.kv('hsm'), '10.0.0.1:1500');
    assert.equal(ctx.kv('other'), undefined);
    const t = ctx.createTempFile('report');
    assert.match(basename(t), /^report_.{10}\.tmp$/);
    assert.equal(statSync(t).size, 0);
    assert.equal(ctx.pathOfFile('x_1234567890.tmp'), join(dir, 'x_1234567890.tmp'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tx context - response files must be in file/ and at most 4', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-ctx-'));
  try {
    const ctx = makeCtx(dir);
    for (const bad of ['/etc/passwd', '../x.tmp', 'sub/x.tmp']) {
      assert.throws(() => ctx.putResponseFile(bad), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_FILE_BAD_NAME', bad);
    }
    for (let i = 0; i < 4; i++) ctx.putResponseFile(`f${i}_0123456789.tmp`);
    assert.throws(() => ctx.putResponseFile('f5_0123456789.tmp'), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_PROTO_TOO_MANY_FILES');
    assert.equal(ctx.responseFiles.length, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tx context - sendResponseAhead fires once', () => {
  let n = 0;
  const ctx = makeCtx(tmpdir(), () => {
    n++;
    ctx.markSent();
  });
  assert.equal(ctx.sendResponseAhead(), true);
  assert.equal(ctx.sendResponseAhead(), false);
  assert.equal(n, 1);
  assert.equal(ctx.sent, true);
});
