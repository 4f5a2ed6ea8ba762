import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { createTempFileName, fileIdOf, isFileId, isStoredFileName } from '../../../src/protocol/file-names.js';

describe('attachment names', () => {
  it('fileIdOf - takes the part before the first _, else the base name without extension', () => {
    assert.equal(fileIdOf('/home/x/file/invoice_Ab3dE6gH9k.tmp'), 'invoice');
    assert.equal(fileIdOf('a_b_c.txt'), 'a');
    assert.equal(fileIdOf('report.pdf'), 'report');
    assert.equal(fileIdOf('archive.tar.gz'), 'archive.tar');
    assert.equal(fileIdOf('README'), 'README');
    assert.equal(fileIdOf('.profile'), '.profile');
  });

  it('fileIdOf - keeps only [A-Za-z0-9.-], at most 64 characters, and never returns an unusable id', () => {
    assert.equal(fileIdOf('rép ort!@#.pdf'), 'rport');
    assert.equal(fileIdOf('x'.repeat(100) + '.bin'), 'x'.repeat(64));
    assert.equal(fileIdOf('汇总_x.txt'), 'file');
    assert.equal(fileIdOf('.._x'), 'file');
    assert.equal(fileIdOf('_abc'), 'file');
    for (const n of ['a/b/../c_d', '../../etc/passwd', 'x\u0000y']) assert.ok(isFileId(fileIdOf(n)), n);
  });

  it('createTempFileName - (file_id)_(10 chars).tmp in the dir, unique, and refuses a bad file_id', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ibp-names-'));
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 200; i++) {
        const p = createTempFileName(dir, 'inv.2024-01');
        assert.equal(dirname(p), dir);
        assert.match(basename(p), /^inv\.2024-01_[A-Za-z0-9]{10}\.tmp$/);
        assert.ok(isStoredFileName(basename(p)));
        seen.add(p);
        writeFileSync(p, '');
      }
      assert.equal(seen.size, 200);
      for (const bad of ['', 'a/b', '..', 'x'.repeat(65), 'a_b']) {
        assert.throws(() => createTempFileName(dir, bad), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_FILE_BAD_NAME', bad);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('isStoredFileName - accepts only (file_id)_(10 alphanumerics).tmp with no directory part', () => {
    assert.equal(isStoredFileName('inv_Ab3dE6gH9k.tmp'), true);
    for (const n of ['inv_Ab3dE6gH9.tmp', 'inv_Ab3dE6gH9kk.tmp', '../inv_Ab3dE6gH9k.tmp', 'inv_Ab3dE6gH9k.tmpx', '_Ab3dE6gH9k.tmp', 'a/b_Ab3dE6gH9k.tmp']) {
      assert.equal(isStoredFileName(n), false, n);
    }
  });
});
