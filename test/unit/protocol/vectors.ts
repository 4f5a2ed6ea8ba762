/**
 * The test vectors of docs/protocol.md: each frame as the encoder is given it and as hex on the wire.
 */
import type { IbpErrorData } from '../../../src/core/errors.js';
import type { Ib2FileBegin, Ib2PreRequest, Ib2PreResponse, Ib2Response } from '../../../src/protocol/ib2-frames.js';

export type Vector =
  | { name: string; kind: 'pre-request'; value: Ib2PreRequest; hex: string }
  | { name: string; kind: 'pre-response'; value: Ib2PreResponse; hex: string }
  | { name: string; kind: 'file-begin'; value: Ib2FileBegin; hex: string }
  | { name: string; kind: 'file-data' | 'request'; value: Buffer; hex: string }
  | { name: string; kind: 'response'; value: Ib2Response; hex: string }
  | { name: string; kind: 'goaway'; value: null; hex: string }
  | { name: string; kind: 'error'; value: IbpErrorData; hex: string }
  | { name: string; kind: 'ib1-request'; value: { app: string; body: Buffer }; hex: string }
  | { name: string; kind: 'ib1-response'; value: { error?: IbpErrorData; body: Buffer }; hex: string };

const noSec = { sign: false, compress: false, encrypt: false };

export const VECTORS: Vector[] = [
  {
    name: 'pre-request', kind: 'pre-request',
    value: { clientNode: 'N1', app: 'echo', jnlsno: 'J0001', trace: true, fileCount: 0, pipelined: true },
    hex: '49 42 32 01 00 00 00 13 03 00 00 02 4e 31 00 04 65 63 68 6f 00 05 4a 30 30 30 31',
  },
  {
    name: 'pre-response-accepted', kind: 'pre-response',
    value: { securityFlags: { sign: false, compress: true, encrypt: false } },
    hex: '49 42 32 02 00 00 00 02 00 02',
  },
  {
    name: 'pre-response-refused', kind: 'pre-response',
    value: { securityFlags: noSec, refusal: { code: 'IBP_ERR_SERVER_BUSY', message: 'busy', retryable: true } },
    hex: '49 42 32 02 00 00 00 20 01 00 00 13 49 42 50 5f 45 52 52 5f 53 45 52 56 45 52 5f 42 55 53 59 00 04 62 75 73 79 01 00 00',
  },
  {
    name: 'file-begin', kind: 'file-begin',
    value: { index: 0, size: 5, name: 'invoice.pdf' },
    hex: '49 42 32 03 00 00 00 16 00 00 00 00 00 00 00 00 05 00 0b 69 6e 76 6f 69 63 65 2e 70 64 66',
  },
  { name: 'file-data', kind: 'file-data', value: Buffer.from('hello'), hex: '49 42 32 04 00 00 00 05 68 65 6c 6c 6f' },
  { name: 'request', kind: 'request', value: Buffer.from('{"a":1}'), hex: '49 42 32 05 00 00 00 07 7b 22 61 22 3a 31 7d' },
  {
    name: 'response-ok', kind: 'response',
    value: { load: { busy: 1, total: 4 }, fileNames: ['inv_Ab3dE6gH9k.tmp'], body: Buffer.from('{"ok":1}') },
    hex: '49 42 32 06 00 00 00 22 00 00 01 00 04 01 00 12 69 6e 76 5f 41 62 33 64 45 36 67 48 39 6b 2e 74 6d 70 7b 22 6f 6b 22 3a 31 7d',
  },
  {
    name: 'response-error', kind: 'response',
    value: {
      error: { code: 'IBP_ERR_SERVER_APP_FAILED', message: 'boom', details: { app: 'x' } },
      load: { busy: 0, total: 4 }, fileNames: [], body: Buffer.alloc(0),
    },
    hex: '49 42 32 06 00 00 00 35 01 00 00 00 04 00 00 19 49 42 50 5f 45 52 52 5f 53 45 52 56 45 52 5f 41 50 50 5f 46 41 49 4c 45 44 00 04 62 6f 6f 6d 00 00 0b 7b 22 61 70 70 22 3a 22 78 22 7d',
  },
  { name: 'goaway', kind: 'goaway', value: null, hex: '49 42 32 07 00 00 00 00' },
  {
    name: 'error', kind: 'error',
    value: { code: 'IBP_ERR_PROTO_READ_TIMEOUT', message: 'slow' },
    hex: '49 42 32 08 00 00 00 25 00 1a 49 42 50 5f 45 52 52 5f 50 52 4f 54 4f 5f 52 45 41 44 5f 54 49 4d 45 4f 55 54 00 04 73 6c 6f 77 00 00 00',
  },
  {
    name: 'ib1-request', kind: 'ib1-request',
    value: { app: 'ibp_test_echo', body: Buffer.from('{"hello":1}') },
    hex: '49 42 31 0d 69 62 70 5f 74 65 73 74 5f 65 63 68 6f 00 00 00 0b 7b 22 68 65 6c 6c 6f 22 3a 31 7d',
  },
  {
    name: 'ib1-response-ok', kind: 'ib1-response',
    value: { body: Buffer.from('{"hello":1}') },
    hex: '49 42 31 00 00 00 00 0b 7b 22 68 65 6c 6c 6f 22 3a 31 7d',
  },
  {
    name: 'ib1-response-error', kind: 'ib1-response',
    value: { error: { code: 'IBP_ERR_SERVER_APP_NOT_FOUND', message: 'no app x' }, body: Buffer.alloc(0) },
    hex: '49 42 31 01 00 00 00 3c 7b 22 63 6f 64 65 22 3a 22 49 42 50 5f 45 52 52 5f 53 45 52 56 45 52 5f 41 50 50 5f 4e 4f 54 5f 46 4f 55 4e 44 22 2c 22 6d 65 73 73 61 67 65 22 3a 22 6e 6f 20 61 70 70 20 78 22 7d',
  },
];

export function fromHex(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}
