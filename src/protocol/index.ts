/**
 * IBP's protocol layer: the wire formats (IB2, IB1, HTTP), protocol sniffing, the four-packet exchange,
 * and attachment naming. The rest of the system depends on the message model in types.ts and on the two
 * entry points here: `serveConnection` (server side of any protocol) and `Ib2Connection` (IB2 client).
 * Byte layouts and test vectors: docs/protocol.md.
 */
export * from './types.js';
export { serveConnection, type ServerConnection, type ServeConnectionOptions } from './server-connection.js';
export { Ib2Connection, type Ib2ConnectOptions, type Ib2CallRequest } from './ib2-client.js';
export { createTempFileName, fileIdOf, isFileId, isStoredFileName, FILE_ID_MAX_CHARS } from './file-names.js';
export { resolveLimits, GOAWAY_GRACE_MS } from './limits.js';
export type { ProtocolLogger } from './run-transaction.js';
export { encodeIb1Request, encodeIb1Response, Ib1Decoder, type Ib1Request, type Ib1Response } from './ib1-codec.js';
export { httpStatusOf } from './http-status.js';
export { DerivedKey, deriveKey, sendingKeyExp, acceptedKey, KCV_BYTES, type NodeKeys } from './security/keys.js';
