/**
 * Seed inputs for the fuzz targets: the test vectors of docs/protocol.md plus frames and streams that reach
 * the other branches (files, long strings, two transactions on one connection, HTTP with every IBP header).
 */
import {
  encodeError, encodeFileBegin, encodeFileData, encodeGoAway, encodePreRequest, encodePreResponse, encodeRequest,
  encodeResponse, IB2_HEADER_BYTES,
} from '../../src/protocol/ib2-frames.js';
import { encodeIb1Request, encodeIb1Response } from '../../src/protocol/ib1-codec.js';
import { DEFAULT_LIMITS, type ProtocolLimits } from '../../src/protocol/types.js';
import { VECTORS, fromHex } from '../unit/protocol/vectors.js';

/** Small limits, so that the mutations reach every "too large" branch. */
export const FUZZ_LIMITS: ProtocolLimits = Object.freeze({
  ...DEFAULT_LIMITS, maxBodyBytes: 4096, maxFramePayloadBytes: 8192, maxFileBytes: 4096, readTimeoutMs: 300, idleTimeoutMs: 300,
});

const sec = { sign: false, compress: false, encrypt: false };
const b = (s: string): Buffer => Buffer.from(s);
const payloadOf = (frame: Buffer): Buffer => frame.subarray(IB2_HEADER_BYTES);

/** Every IB2 vector and more frames, each a whole frame. */
export const IB2_FRAMES: Buffer[] = [
  ...VECTORS.filter((v) => !v.kind.startsWith('ib1')).map((v) => fromHex(v.hex)),
  encodePreRequest({ clientNode: '节点', app: 'ibp_test_echo', jnlsno: '2024-0001', trace: true, fileCount: 4, pipelined: false }),
  encodePreRequest({ clientNode: 'N'.repeat(64), app: 'a'.repeat(64), jnlsno: 'j'.repeat(64), trace: false, fileCount: 1, pipelined: true }),
  encodePreResponse({ securityFlags: { sign: true, compress: true, encrypt: true }, nonce: Buffer.alloc(16, 7) }),
  encodePreResponse({ securityFlags: sec, refusal: { code: 'IBP_ERR_SERVER_APP_NOT_FOUND', message: 'é'.repeat(300), details: { app: 'x', n: [1, 2, { deep: null }] } } }),
  encodeFileBegin({ index: 3, size: 2 ** 40, name: 'report_2024.pdf' }),
  encodeFileBegin({ index: 1, size: 0, name: 'e'.repeat(255) }),
  encodeFileData(Buffer.alloc(300, 7)),
  encodeRequest(Buffer.alloc(300, 7)),
  encodeRequest(Buffer.alloc(0)),
  encodeResponse({ load: { busy: 3, total: 8 }, fileNames: ['a_1234567890.tmp', 'b_1234567890.tmp', 'c', 'd'], body: b('{"r":[1,2,3]}') }),
  encodeResponse({ load: { busy: 0, total: 0 }, fileNames: [], body: Buffer.alloc(0), error: { code: 'IBP_ERR_SERVER_BUSY', message: '', retryable: true } }),
  encodeError({ code: 'IBP_ERR_PROTO_BAD_FIELD', message: 'x', details: { field: 'app' } }),
  encodeGoAway(),
];

/** PRE_REQUEST and PRE_RESPONSE payloads (the handshake). */
export const HANDSHAKE_PAYLOADS = {
  preRequest: IB2_FRAMES.filter((f) => f[3] === 1).map(payloadOf),
  preResponse: IB2_FRAMES.filter((f) => f[3] === 2).map(payloadOf),
};

/** RESPONSE, ERROR and FILE_BEGIN payloads. */
export const OTHER_PAYLOADS = {
  response: IB2_FRAMES.filter((f) => f[3] === 6).map(payloadOf),
  error: IB2_FRAMES.filter((f) => f[3] === 8).map(payloadOf),
  fileBegin: IB2_FRAMES.filter((f) => f[3] === 3).map(payloadOf),
};

/** A pushed or pulled batch of files: FILE_BEGIN + FILE_DATA… per file. */
export function fileBatch(files: Array<{ name: string; data: Buffer; chunk?: number }>): Buffer {
  const parts: Buffer[] = [];
  files.forEach((f, index) => {
    parts.push(encodeFileBegin({ index, size: f.data.length, name: f.name }));
    const step = f.chunk ?? 100;
    for (let at = 0; at < f.data.length; at += step) parts.push(encodeFileData(f.data.subarray(at, at + step)));
  });
  return Buffer.concat(parts);
}

/** File batches with their file count and names (for receiveFiles). */
export const FILE_BATCHES: Array<{ names: string[]; bytes: Buffer }> = [
  { names: ['inv_Ab3dE6gH9k.tmp'], bytes: fileBatch([{ name: 'inv_Ab3dE6gH9k.tmp', data: b('hello') }]) },
  { names: ['a.txt', 'b.bin'], bytes: fileBatch([{ name: 'a.txt', data: Buffer.alloc(250, 1), chunk: 64 }, { name: 'b.bin', data: Buffer.alloc(0) }]) },
  {
    names: ['r0_0123456789.tmp', 'r1', 'r2.pdf', 'r3'],
    bytes: fileBatch(['r0_0123456789.tmp', 'r1', 'r2.pdf', 'r3'].map((name, i) => ({ name, data: Buffer.alloc(i * 40, 65 + i), chunk: 33 }))),
  },
];

/** IB1 requests and responses. */
export const IB1_MESSAGES = {
  request: [
    fromHex(VECTORS.find((v) => v.name === 'ib1-request')!.hex),
    encodeIb1Request('x', Buffer.alloc(0)),
    encodeIb1Request('a'.repeat(64), Buffer.alloc(40, 0x7a)),
    Buffer.concat([encodeIb1Request('echo', b('one')), encodeIb1Request('节点', Buffer.alloc(200, 1))]),
  ],
  response: [
    ...VECTORS.filter((v) => v.kind === 'ib1-response').map((v) => fromHex(v.hex)),
    encodeIb1Response({ error: { code: 'IBP_ERR_SERVER_BUSY', message: 'b', retryable: true }, body: Buffer.alloc(0) }),
    Buffer.concat([encodeIb1Response({ body: b('ok') }), encodeIb1Response({ body: Buffer.alloc(0) })]),
  ],
};

const http = (s: string): Buffer => b(s.replace(/\n/g, '\r\n'));

/** Whole client → server streams of all three protocols, for the server target. */
export const SERVER_STREAMS: Buffer[] = [
  Buffer.concat([encodePreRequest({ clientNode: 'F', app: 'echo', jnlsno: 'J', trace: false, fileCount: 0, pipelined: true }), encodeRequest(b('{"x":1}'))]),
  Buffer.concat([encodePreRequest({ clientNode: 'F', app: 'echo', jnlsno: 'J', trace: false, fileCount: 0, pipelined: false }), encodeRequest(b('slow path'))]),
  Buffer.concat([
    encodePreRequest({ clientNode: 'F', app: 'echo_files', jnlsno: 'J', trace: true, fileCount: 2, pipelined: true }),
    fileBatch([{ name: 'f_0123456789.tmp', data: b('data') }, { name: 'g.txt', data: Buffer.alloc(150, 9), chunk: 64 }]),
    encodeRequest(b('r')),
  ]),
  Buffer.concat([
    encodePreRequest({ clientNode: 'F', app: 'nope', jnlsno: 'J', trace: false, fileCount: 1, pipelined: true }),
    fileBatch([{ name: 'x', data: b('dropped') }]), encodeRequest(b('refused')),
    encodePreRequest({ clientNode: 'F', app: 'fail', jnlsno: 'J2', trace: false, fileCount: 0, pipelined: true }), encodeRequest(b('boom')),
    encodePreRequest({ clientNode: 'F', app: 'ahead', jnlsno: 'J3', trace: false, fileCount: 0, pipelined: true }), encodeRequest(b('early')),
  ]),
  Buffer.concat([encodeIb1Request('echo', b('one')), encodeIb1Request('meta', Buffer.alloc(0)), encodeIb1Request('fail', b('x'))]),
  http('POST /ibp/echo HTTP/1.1\nHost: x\nx-ibp-trace: 1\nx-ibp-client-node: WEB\nx-ibp-jnlsno: J1\nContent-Length: 5\n\nhello'),
  http('PUT /ibp/file/abc HTTP/1.1\nHost: x\nContent-Length: 3\n\nxyzPOST /ibp/echo_files HTTP/1.1\nx-ibp-files: abc_0123456789.tmp\nContent-Length: 2\n\nhi'),
  http('POST /ibp/echo HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\nGET /ibp/file/abc_0123456789.tmp HTTP/1.1\n\n'),
  http('POST /ibp/fail HTTP/1.0\nContent-Length: 0\n\nPOST /ibp/nope HTTP/1.1\nContent-Length: 1\n\nx'),
];

/** Tokens the mutator splices into the text protocol. */
export const HTTP_DICTIONARY: Buffer[] = [
  '\r\n', '\r\n\r\n', ': ', 'Content-Length: ', 'Content-Length: 99999999\r\n', 'Transfer-Encoding: chunked\r\n', '0\r\n\r\n',
  'x-ibp-files: ', 'x-ibp-client-node: ', 'x-ibp-jnlsno: ', 'x-ibp-trace: 1\r\n', 'Connection: close\r\n', 'Expect: 100-continue\r\n',
  '%', '%2F', '%ff', '%00', '/ibp/', '/ibp/file/', '..', ',', '?', ' HTTP/1.1', ' HTTP/1.0', 'GET ', 'POST ', 'PUT ', 'HEAD ', 'OPTIONS ',
  'a_0123456789.tmp', '\n', ' ', '\t', 'IB2', 'IB1',
].map((s) => b(s));

/** Whole server → client streams (what an IB2 client may receive), for the client target; `split` = where the second call's part starts (0: one call). */
export const CLIENT_STREAMS: Array<{ bytes: Buffer; split: number }> = (() => {
  const accept = encodePreResponse({ securityFlags: sec });
  const ok = encodeResponse({ load: { busy: 1, total: 2 }, fileNames: [], body: b('pong') });
  const withFiles = Buffer.concat([
    encodeResponse({ load: { busy: 1, total: 2 }, fileNames: ['p_0123456789.tmp', 'q.txt'], body: b('{}') }),
    fileBatch([{ name: 'p_0123456789.tmp', data: b('pulled') }, { name: 'q.txt', data: Buffer.alloc(120, 3), chunk: 50 }]),
  ]);
  const one = (...parts: Buffer[]): { bytes: Buffer; split: number } => ({ bytes: Buffer.concat(parts), split: 0 });
  const two = (first: Buffer, second: Buffer): { bytes: Buffer; split: number } => ({ bytes: Buffer.concat([first, second]), split: first.length });
  return [
    one(accept, ok),
    one(accept, withFiles),
    one(fromHex(VECTORS.find((v) => v.name === 'pre-response-refused')!.hex)),
    one(accept, fromHex(VECTORS.find((v) => v.name === 'response-error')!.hex)),
    one(encodeError({ code: 'IBP_ERR_PROTO_READ_TIMEOUT', message: 'slow' })),
    one(accept, encodeGoAway(), ok),
    two(Buffer.concat([accept, ok]), Buffer.concat([accept, ok])),
    two(Buffer.concat([accept, ok]), Buffer.concat([accept, withFiles])),
    two(Buffer.concat([accept, ok]), Buffer.concat([encodePreResponse({ securityFlags: sec, refusal: { code: 'IBP_ERR_SERVER_BUSY', message: 'b' } })])),
  ];
})();
