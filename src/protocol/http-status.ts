/**
 * How IBP errors map to HTTP: status codes, and the JSON error body `{"error":{code,message,...}}`.
 */
import type { ErrorCode, IbpError } from '../core/errors.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  IBP_ERR_SERVER_APP_NOT_FOUND: 404,
  IBP_ERR_REPLICA_UNKNOWN_APP: 404,
  IBP_ERR_FILE_NOT_FOUND: 404,
  IBP_ERR_SERVER_BUSY: 503,
  IBP_ERR_SERVER_SHUTTING_DOWN: 503,
  IBP_ERR_PROTO_BAD_MAGIC: 400,
  IBP_ERR_PROTO_BAD_FIELD: 400,
  IBP_ERR_PROTO_TRUNCATED: 400,
  IBP_ERR_PROTO_UNEXPECTED_FRAME: 400,
  IBP_ERR_PROTO_TOO_MANY_FILES: 400,
  IBP_ERR_PROTO_HTTP: 400,
  IBP_ERR_FILE_BAD_NAME: 400,
  IBP_ERR_CLIENT_BAD_ARGUMENT: 400,
  IBP_ERR_PROTO_FRAME_TOO_LARGE: 413,
  IBP_ERR_FILE_TOO_LARGE: 413,
  IBP_ERR_PROTO_READ_TIMEOUT: 408,
  IBP_ERR_SEC_UNSUPPORTED: 403,
};

/**
 * The HTTP status for an error: 404 app (or file) not found, 503 busy or shutting down, 400 a request
 * that does not follow the mapping, 413 too large, 408 read timeout, 403 a server that signs or encrypts (HTTP cannot carry that), 500 anything else (the app failed).
 */
export function httpStatusOf(err: IbpError): number {
  return STATUS[err.code] ?? 500;
}

/** The JSON error body. */
export function errorBody(err: IbpError): Buffer {
  return Buffer.from(JSON.stringify({ error: err.toJSON() }));
}

/** A complete raw HTTP/1.1 error response (for errors before node:http has a response object). */
export function rawErrorResponse(err: IbpError, status = httpStatusOf(err)): Buffer {
  const body = errorBody(err);
  const reason = status === 400 ? 'Bad Request' : status === 408 ? 'Request Timeout' : status === 413 ? 'Payload Too Large'
    : status === 431 ? 'Request Header Fields Too Large' : 'Error';
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nx-ibp-error-code: ${err.code}\r\n` +
      `content-length: ${body.length}\r\nconnection: close\r\n\r\n`),
    body,
  ]);
}
