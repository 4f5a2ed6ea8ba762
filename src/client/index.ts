/** The IBP client library: call transactions on server nodes. See docs/client.md. */
export { IbacEnv, IbacConnection, CallResponse, type IbacEnvOptions, type CallOptions, type MessageBody } from './env.js';
export { callMany, multiCommStatus, type MultiCall, type MultiResult, type CallManyOptions } from './multi.js';
export type { ChosenHost } from './host-choice.js';
export { IbpError, type CommStatus, type ErrorCode } from '../core/errors.js';
