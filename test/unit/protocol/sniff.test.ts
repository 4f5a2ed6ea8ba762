import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SNIFF_MAX_BYTES, sniffProtocol } from '../../../src/protocol/sniff.js';

describe('protocol sniffing', () => {
  it('sniff - IB2, IB1 and every HTTP method with its space are recognised', () => {
    assert.equal(sniffProtocol(Buffer.from('IB2\x01')), 'IB2');
    assert.equal(sniffProtocol(Buffer.from('IB1')), 'IB1');
    for (const m of ['GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH']) assert.equal(sniffProtocol(Buffer.from(`${m} /x`)), 'HTTP', m);
    assert.equal(SNIFF_MAX_BYTES, 8);
  });

  it('sniff - waits while a prefix still fits, refuses as soon as nothing can match', () => {
    for (const p of ['I', 'IB', 'P', 'PO', 'POST', 'OPTIONS', 'G']) assert.equal(sniffProtocol(Buffer.from(p)), 'more', p);
    for (const p of ['X', 'IB3', 'POSTX', 'GET/', 'get ', '\x16\x03\x01', 'IA']) assert.equal(sniffProtocol(Buffer.from(p)), 'bad', p);
  });
});
