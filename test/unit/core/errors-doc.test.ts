import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../../src/core/errors.js';

/** From dist/test/unit/core/ (or test/unit/core/) up to the package root. */
const DOC = fileURLToPath(new URL('../../../../docs/errors.md', import.meta.url));

/** The first cells of the rows of every `| code | meaning | what to do |` table, in order. */
function documentedCodes(markdown: string): string[] {
  const codes: string[] = [];
  let inTable = false;
  for (const raw of markdown.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (!inTable) {
      inTable = cells[0] === 'code' && cells[1] === 'meaning' && cells[2] === 'what to do';
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    codes.push(cells[0].replace(/^`|`$/g, ''));
  }
  return codes;
}

describe('docs/errors.md', () => {
  const doc = readFileSync(DOC, 'utf8');
  const documented = documentedCodes(doc);
  const registry = Object.keys(ERROR_CODES);

  it('errors doc - the tables are found', () => {
    assert.ok(documented.length > 0, `no | code | meaning | what to do | table rows in ${DOC}`);
  });

  it('errors doc - every code in ERROR_CODES has a row', () => {
    const missing = registry.filter((c) => !documented.includes(c));
    assert.deepEqual(missing, [], `codes missing from docs/errors.md: ${missing.join(', ')}`);
  });

  it('errors doc - every row names a code that is in ERROR_CODES', () => {
    const unknown = documented.filter((c) => !registry.includes(c));
    assert.deepEqual(unknown, [], `rows of docs/errors.md that are not in ERROR_CODES: ${unknown.join(', ')}`);
  });

  it('errors doc - no code has two rows', () => {
    const twice = documented.filter((c, i) => documented.indexOf(c) !== i);
    assert.deepEqual(twice, [], `codes with more than one row: ${twice.join(', ')}`);
  });

  it('errors doc - every row has a meaning and a what-to-do', () => {
    const rows = doc.split('\n').filter((l) => /^\|\s*`IBP_ERR_/.test(l.trim()));
    const thin = rows.filter((l) => {
      const cells = l.trim().split('|').slice(1, -1).map((c) => c.trim());
      return cells.length !== 3 || cells[1].length === 0 || cells[2].length === 0;
    });
    assert.deepEqual(thin, []);
  });
});

describe('documentedCodes', () => {
  it('errors doc - the parser reads first cells of code tables only', () => {
    const md = [
      '| commStatus | meaning |',
      '| --- | --- |',
      '| `NOT_SENT` | x |',
      '',
      '| code | meaning | what to do |',
      '| --- | --- | --- |',
      '| `IBP_ERR_A` | a | b |',
      '| IBP_ERR_B | a | b |',
      'text',
      '| `IBP_ERR_C` | stray table row | x |',
    ].join('\n');
    assert.deepEqual(documentedCodes(md), ['IBP_ERR_A', 'IBP_ERR_B']);
  });
});
