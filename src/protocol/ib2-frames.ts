/**
 * IB2 frame layouts (docs/protocol.md §IB2 has the byte tables and test vectors): one encoder per frame
 * type that writes the whole frame into one Buffer, and one payload decoder per frame type.
 * No JSON on the hot path: only the optional `details` of an error travel as a JSON string.
 */
import { IbpError, type IbpErrorData } from '../core/errors.js';
import { MAX_FILES, type PreRequest, type ProtocolLimits, type SecurityFlags, type ServerLoad } from './types.js';
import { WireReader, badField, checkStr, strSize, writeStr, writeU64 } from './wire.js';

/** Bytes of the connection nonce a PRE_RESPONSE carries when signing or encryption is proposed. */
export const PRE_RESPONSE_NONCE_BYTES = 16;

/** 'I' 'B' '2'. */
export const IB2_MAGIC = Buffer.from([0x49, 0x42, 0x32]);
/** Magic (3) + frame type (1) + payload length (u32 BE). */
export const IB2_HEADER_BYTES = 8;

/** Frame type byte values. */
export const FrameType = {
  PRE_REQUEST: 0x01,
  PRE_RESPONSE: 0x02,
  FILE_BEGIN: 0x03,
  FILE_DATA: 0x04,
  REQUEST: 0x05,
  RESPONSE: 0x06,
  GOAWAY: 0x07,
  ERROR: 0x08,
} as const;
export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeCode = (typeof FrameType)[FrameTypeName];

const NAMES: Record<number, FrameTypeName> = Object.fromEntries(
  Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]),
);

/** The frame name for a type byte, or undefined for an unknown type. */
export function frameTypeName(type: number): FrameTypeName | undefined {
  return NAMES[type];
}

/** Largest field sizes, in UTF-8 bytes. */
export const FIELD_MAX_BYTES = {
  clientNode: 64,
  app: 64,
  jnlsno: 64,
  fileName: 255,
  errorCode: 64,
  errorMessage: 4096,
  errorDetails: 4096,
} as const;

/** Largest FILE_DATA payload. Senders use {@link FILE_CHUNK_BYTES}. */
export const FILE_DATA_MAX_BYTES = 1024 * 1024;
/** The chunk size our senders use. */
export const FILE_CHUNK_BYTES = 256 * 1024;

const ERROR_DATA_MAX = 2 + FIELD_MAX_BYTES.errorCode + 2 + FIELD_MAX_BYTES.errorMessage + 1 + 2 + FIELD_MAX_BYTES.errorDetails;
const PRE_REQUEST_MAX = 2 + 2 + FIELD_MAX_BYTES.clientNode + 2 + FIELD_MAX_BYTES.app + 2 + FIELD_MAX_BYTES.jnlsno;
const FILE_BEGIN_MAX = 1 + 8 + 2 + FIELD_MAX_BYTES.fileName;
const RESPONSE_HEAD_MAX = 1 + 2 + 2 + 1 + MAX_FILES * (2 + FIELD_MAX_BYTES.fileName) + ERROR_DATA_MAX;

/** The largest payload accepted for each frame type under `limits` (checked before a payload is read). */
export function maxPayloadBytes(type: number, limits: ProtocolLimits): number {
  switch (type) {
    case FrameType.PRE_REQUEST: return PRE_REQUEST_MAX;
    case FrameType.PRE_RESPONSE: return 2 + PRE_RESPONSE_NONCE_BYTES + ERROR_DATA_MAX;
    case FrameType.FILE_BEGIN: return FILE_BEGIN_MAX;
    case FrameType.FILE_DATA: return Math.min(FILE_DATA_MAX_BYTES, limits.maxFramePayloadBytes);
    case FrameType.REQUEST: return Math.min(limits.maxBodyBytes, limits.maxFramePayloadBytes);
    case FrameType.RESPONSE: return Math.min(limits.maxFramePayloadBytes, RESPONSE_HEAD_MAX + limits.maxBodyBytes);
    case FrameType.GOAWAY: return 0;
    case FrameType.ERROR: return ERROR_DATA_MAX;
    default: return -1;
  }
}

/** Packet 1 as IB2 carries it: `pipelined` says REQUEST (and files) follow without waiting for PRE_RESPONSE. */
export interface Ib2PreRequest extends PreRequest {
  pipelined: boolean;
}

/**
 * The server's answer to a pre-request. `refusal` set = refused (the transaction will not run). `nonce`: the
 * connection nonce (16 bytes), present exactly when signing or encryption is proposed (docs/protocol.md §Security).
 */
export interface Ib2PreResponse {
  securityFlags: SecurityFlags;
  nonce?: Buffer;
  refusal?: IbpErrorData;
}

/** Announces one file; FILE_DATA frames with exactly `size` bytes follow. */
export interface Ib2FileBegin {
  index: number;
  size: number;
  name: string;
}

/** The response packet. An error response carries no files. */
export interface Ib2Response {
  error?: IbpErrorData;
  load: ServerLoad;
  fileNames: string[];
  body: Buffer;
}

function frame(type: FrameTypeCode, payloadBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(IB2_HEADER_BYTES + payloadBytes);
  writeHeader(buf, type, payloadBytes);
  return buf;
}

/** Writes the 8-byte header at the start of `buf`. */
export function writeHeader(buf: Buffer, type: FrameTypeCode, payloadBytes: number): void {
  buf[0] = 0x49;
  buf[1] = 0x42;
  buf[2] = 0x32;
  buf[3] = type;
  buf.writeUInt32BE(payloadBytes, 4);
}

export function encodePreRequest(p: Ib2PreRequest): Buffer {
  return encodePreRequestWith(p, undefined);
}

/** PRE_REQUEST (pipelined) and REQUEST in one Buffer, as a pipelined call writes them. */
export function encodePipelinedRequest(p: Ib2PreRequest, body: Buffer): Buffer {
  return encodePreRequestWith(p, body);
}

function encodePreRequestWith(p: Ib2PreRequest, body: Buffer | undefined): Buffer {
  const n = checkStr('PRE_REQUEST', 'clientNode', p.clientNode, FIELD_MAX_BYTES.clientNode)
    + checkStr('PRE_REQUEST', 'app', p.app, FIELD_MAX_BYTES.app)
    + checkStr('PRE_REQUEST', 'jnlsno', p.jnlsno, FIELD_MAX_BYTES.jnlsno);
  checkFileCount('PRE_REQUEST', p.fileCount);
  const size = 2 + 6 + n;
  const buf = Buffer.allocUnsafe(IB2_HEADER_BYTES + size + (body ? IB2_HEADER_BYTES + body.length : 0));
  writeHeader(buf, FrameType.PRE_REQUEST, size);
  buf[8] = (p.trace ? 1 : 0) | (p.pipelined ? 2 : 0);
  buf[9] = p.fileCount;
  let off = writeStr(buf, 10, p.clientNode);
  off = writeStr(buf, off, p.app);
  off = writeStr(buf, off, p.jnlsno);
  if (body) {
    writeHeader(buf.subarray(off), FrameType.REQUEST, body.length);
    body.copy(buf, off + IB2_HEADER_BYTES);
  }
  return buf;
}

export function decodePreRequest(payload: Buffer): Ib2PreRequest {
  const r = new WireReader(payload, 'PRE_REQUEST');
  const flags = r.u8('flags');
  if (flags & ~3) throw badField('PRE_REQUEST', 'flags', `unknown bits 0x${flags.toString(16)}`);
  const fileCount = r.u8('fileCount');
  checkFileCount('PRE_REQUEST', fileCount);
  const clientNode = r.str('clientNode', FIELD_MAX_BYTES.clientNode);
  const app = r.str('app', FIELD_MAX_BYTES.app);
  const jnlsno = r.str('jnlsno', FIELD_MAX_BYTES.jnlsno);
  r.end();
  if (app.length === 0) throw badField('PRE_REQUEST', 'app', 'empty');
  return { clientNode, app, jnlsno, trace: (flags & 1) !== 0, fileCount, pipelined: (flags & 2) !== 0 };
}

export function encodePreResponse(p: Ib2PreResponse): Buffer {
  const err = p.refusal === undefined ? undefined : fitErrorData(p.refusal);
  const nonce = nonceOf(p.securityFlags, p.nonce);
  const buf = frame(FrameType.PRE_RESPONSE, 2 + nonce.length + (err ? errorDataSize(err) : 0));
  buf[8] = err ? 1 : 0;
  buf[9] = securityByte(p.securityFlags);
  nonce.copy(buf, 10);
  if (err) writeErrorData(buf, 10 + nonce.length, err);
  return buf;
}

/** The nonce bytes a PRE_RESPONSE with these flags carries (none unless signing or encryption is proposed). */
function nonceOf(f: SecurityFlags, nonce: Buffer | undefined): Buffer {
  if (!f.sign && !f.encrypt) return EMPTY;
  if (nonce === undefined || nonce.length !== PRE_RESPONSE_NONCE_BYTES) {
    throw badField('PRE_RESPONSE', 'nonce', `signing or encryption needs a ${PRE_RESPONSE_NONCE_BYTES}-byte nonce, got ${nonce?.length ?? 'none'}`);
  }
  return nonce;
}

export function decodePreResponse(payload: Buffer): Ib2PreResponse {
  const r = new WireReader(payload, 'PRE_RESPONSE');
  const status = r.u8('status');
  if (status > 1) throw badField('PRE_RESPONSE', 'status', `expected 0 or 1, got ${status}`);
  const securityFlags = readSecurity(r, 'PRE_RESPONSE');
  const out: Ib2PreResponse = { securityFlags };
  if (securityFlags.sign || securityFlags.encrypt) out.nonce = r.bytes('nonce', PRE_RESPONSE_NONCE_BYTES);
  if (status === 1) out.refusal = readErrorData(r, 'PRE_RESPONSE');
  r.end();
  return out;
}

export function encodeFileBegin(f: Ib2FileBegin): Buffer {
  const n = checkStr('FILE_BEGIN', 'name', f.name, FIELD_MAX_BYTES.fileName);
  if (!Number.isSafeInteger(f.size) || f.size < 0) throw badField('FILE_BEGIN', 'size', `not a size: ${f.size}`);
  const buf = frame(FrameType.FILE_BEGIN, 1 + 8 + 2 + n);
  buf[8] = f.index;
  writeU64(buf, 9, f.size);
  writeStr(buf, 17, f.name);
  return buf;
}

export function decodeFileBegin(payload: Buffer): Ib2FileBegin {
  const r = new WireReader(payload, 'FILE_BEGIN');
  const index = r.u8('index');
  const size = r.u64('size');
  const name = r.str('name', FIELD_MAX_BYTES.fileName);
  r.end();
  return { index, size, name };
}

/** A FILE_DATA frame whose payload (bytes 8..) the caller fills, e.g. straight from a file read. */
export function allocFileData(chunkBytes: number): Buffer {
  return frame(FrameType.FILE_DATA, chunkBytes);
}

export function encodeFileData(chunk: Buffer): Buffer {
  const buf = frame(FrameType.FILE_DATA, chunk.length);
  chunk.copy(buf, IB2_HEADER_BYTES);
  return buf;
}

/** A frame of `type` with `payload` (used for sealed payloads). */
export function encodeFrame(type: FrameTypeCode, payload: Buffer): Buffer {
  const buf = frame(type, payload.length);
  payload.copy(buf, IB2_HEADER_BYTES);
  return buf;
}

export function encodeRequest(body: Buffer): Buffer {
  const buf = frame(FrameType.REQUEST, body.length);
  body.copy(buf, IB2_HEADER_BYTES);
  return buf;
}

/** Bytes of an accepting PRE_RESPONSE frame (no refusal). */
const ACCEPT_BYTES = IB2_HEADER_BYTES + 2;

/**
 * The RESPONSE frame; with `accepted` set, an accepting PRE_RESPONSE with those flags comes first in the
 * same Buffer (a pipelined transaction answered in one write).
 */
export function encodeResponse(r: Ib2Response, accepted?: SecurityFlags): Buffer {
  const err = r.error === undefined ? undefined : fitErrorData(r.error);
  if (err && r.fileNames.length > 0) throw badField('RESPONSE', 'fileCount', 'an error response carries no files');
  checkFileCount('RESPONSE', r.fileNames.length);
  let size = 1 + 2 + 2 + 1 + (err ? errorDataSize(err) : 0) + r.body.length;
  for (const n of r.fileNames) size += 2 + checkStr('RESPONSE', 'fileName', n, FIELD_MAX_BYTES.fileName);
  const at = accepted ? ACCEPT_BYTES : 0;
  const whole = Buffer.allocUnsafe(at + IB2_HEADER_BYTES + size);
  if (accepted) {
    writeHeader(whole, FrameType.PRE_RESPONSE, 2);
    whole[8] = 0;
    whole[9] = securityByte(accepted);
  }
  const buf = at === 0 ? whole : whole.subarray(at);
  writeHeader(buf, FrameType.RESPONSE, size);
  buf[8] = err ? 1 : 0;
  buf.writeUInt16BE(clampU16(r.load.busy), 9);
  buf.writeUInt16BE(clampU16(r.load.total), 11);
  buf[13] = r.fileNames.length;
  let off = 14;
  for (const n of r.fileNames) off = writeStr(buf, off, n);
  if (err) off = writeErrorData(buf, off, err);
  r.body.copy(buf, off);
  return whole;
}

/**
 * The RESPONSE frame with a sealed body: `sealBody(head)` gets the payload bytes before the body (status, load,
 * names, error: what the seal binds) and returns the sealed body. With `accepted` set, an accepting PRE_RESPONSE
 * with those flags and `nonce` comes first in the same Buffer (a pipelined transaction answered in one write).
 */
export function encodeSealedResponse(
  r: Omit<Ib2Response, 'body'>, sealBody: (head: Buffer) => Buffer, accepted?: SecurityFlags, nonce?: Buffer,
): Buffer {
  const err = r.error === undefined ? undefined : fitErrorData(r.error);
  if (err && r.fileNames.length > 0) throw badField('RESPONSE', 'fileCount', 'an error response carries no files');
  checkFileCount('RESPONSE', r.fileNames.length);
  let headBytes = 1 + 2 + 2 + 1 + (err ? errorDataSize(err) : 0);
  for (const n of r.fileNames) headBytes += 2 + checkStr('RESPONSE', 'fileName', n, FIELD_MAX_BYTES.fileName);
  const head = Buffer.allocUnsafe(headBytes);
  head[0] = err ? 1 : 0;
  head.writeUInt16BE(clampU16(r.load.busy), 1);
  head.writeUInt16BE(clampU16(r.load.total), 3);
  head[5] = r.fileNames.length;
  let off = 6;
  for (const n of r.fileNames) off = writeStr(head, off, n);
  if (err) writeErrorData(head, off, err);
  const body = sealBody(head);
  const pre = accepted ? encodePreResponse({ securityFlags: accepted, nonce }) : EMPTY;
  const whole = Buffer.allocUnsafe(pre.length + IB2_HEADER_BYTES + headBytes + body.length);
  pre.copy(whole, 0);
  writeHeader(whole.subarray(pre.length), FrameType.RESPONSE, headBytes + body.length);
  head.copy(whole, pre.length + IB2_HEADER_BYTES);
  body.copy(whole, pre.length + IB2_HEADER_BYTES + headBytes);
  return whole;
}

export function decodeResponse(payload: Buffer, maxBodyBytes: number): Ib2Response {
  const r = new WireReader(payload, 'RESPONSE');
  const status = r.u8('status');
  if (status > 1) throw badField('RESPONSE', 'status', `expected 0 or 1, got ${status}`);
  const busy = r.u16('busy');
  const total = r.u16('total');
  const count = r.u8('fileCount');
  checkFileCount('RESPONSE', count);
  if (status === 1 && count > 0) throw badField('RESPONSE', 'fileCount', 'an error response carries no files');
  const fileNames: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = r.str('fileName', FIELD_MAX_BYTES.fileName);
    if (n.length === 0) throw badField('RESPONSE', 'fileName', 'empty');
    fileNames.push(n);
  }
  const out: Ib2Response = { load: { busy, total }, fileNames, body: Buffer.alloc(0) };
  if (status === 1) out.error = readErrorData(r, 'RESPONSE');
  if (r.remaining > maxBodyBytes) {
    throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `RESPONSE.body: ${r.remaining} bytes, at most ${maxBodyBytes} allowed`);
  }
  out.body = r.rest();
  return out;
}

const EMPTY = Buffer.alloc(0);
const GOAWAY_FRAME = Buffer.from([0x49, 0x42, 0x32, FrameType.GOAWAY, 0, 0, 0, 0]);

export function encodeGoAway(): Buffer {
  return GOAWAY_FRAME;
}

export function encodeError(e: IbpErrorData): Buffer {
  const err = fitErrorData(e);
  const buf = frame(FrameType.ERROR, errorDataSize(err));
  writeErrorData(buf, 8, err);
  return buf;
}

export function decodeError(payload: Buffer): IbpErrorData {
  const r = new WireReader(payload, 'ERROR');
  const e = readErrorData(r, 'ERROR');
  r.end();
  return e;
}

// --- error data: str code, str message, u8 flags (bit 0 retryable), str details (JSON object or empty)

interface FittedError {
  code: string;
  message: string;
  retryable: boolean;
  details: string;
}

/** Cuts an error to the field maxima (a long message is truncated, oversize details are dropped). */
function fitErrorData(e: IbpErrorData): FittedError {
  let details = '';
  if (e.details !== undefined) {
    try {
      details = JSON.stringify(e.details) ?? '';
    } catch {
      details = '';
    }
    if (Buffer.byteLength(details) > FIELD_MAX_BYTES.errorDetails) details = '';
  }
  return {
    code: truncateUtf8(String(e.code), FIELD_MAX_BYTES.errorCode),
    message: truncateUtf8(String(e.message), FIELD_MAX_BYTES.errorMessage),
    retryable: e.retryable === true,
    details,
  };
}

function errorDataSize(e: FittedError): number {
  return strSize(e.code) + strSize(e.message) + 1 + strSize(e.details);
}

function writeErrorData(buf: Buffer, off: number, e: FittedError): number {
  off = writeStr(buf, off, e.code);
  off = writeStr(buf, off, e.message);
  buf[off++] = e.retryable ? 1 : 0;
  return writeStr(buf, off, e.details);
}

function readErrorData(r: WireReader, frameName: string): IbpErrorData {
  const code = r.str('error.code', FIELD_MAX_BYTES.errorCode);
  const message = r.str('error.message', FIELD_MAX_BYTES.errorMessage);
  const flags = r.u8('error.flags');
  if (flags & ~1) throw badField(frameName, 'error.flags', `unknown bits 0x${flags.toString(16)}`);
  const detailsJson = r.str('error.details', FIELD_MAX_BYTES.errorDetails);
  if (code.length === 0) throw badField(frameName, 'error.code', 'empty');
  const data: IbpErrorData = { code, message };
  if (flags & 1) data.retryable = true;
  if (detailsJson.length > 0) {
    let details: unknown;
    try {
      details = JSON.parse(detailsJson);
    } catch {
      throw badField(frameName, 'error.details', 'not JSON');
    }
    if (typeof details !== 'object' || details === null || Array.isArray(details)) {
      throw badField(frameName, 'error.details', 'not a JSON object');
    }
    data.details = details as Record<string, unknown>;
  }
  return data;
}

function securityByte(f: SecurityFlags): number {
  return (f.sign ? 1 : 0) | (f.compress ? 2 : 0) | (f.encrypt ? 4 : 0);
}

function readSecurity(r: WireReader, frameName: string): SecurityFlags {
  const b = r.u8('security');
  if (b & ~7) throw badField(frameName, 'security', `unknown bits 0x${b.toString(16)}`);
  return { sign: (b & 1) !== 0, compress: (b & 2) !== 0, encrypt: (b & 4) !== 0 };
}

function checkFileCount(frameName: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_FILES) {
    throw new IbpError('IBP_ERR_PROTO_TOO_MANY_FILES', `${frameName}: ${n} files, at most ${MAX_FILES} allowed`, {
      details: { frame: frameName, count: n },
    });
  }
}

function clampU16(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.min(0xffff, Math.floor(n))) : 0;
}

/** The longest prefix of `s` that is at most `maxBytes` UTF-8 bytes, cut at a character boundary. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (s.length <= maxBytes / 3 || Buffer.byteLength(s) <= maxBytes) return s;
  const b = Buffer.from(s, 'utf8');
  let end = maxBytes;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}
