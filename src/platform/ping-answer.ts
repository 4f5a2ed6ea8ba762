/**
 * The platform side of `ibp ping` (docs/protocol.md, "Ping"): a pre-request for the reserved app `ibp ping` (it
 * has a space, so no configured app code can take it) is answered with a PRE_RESPONSE that refuses it with
 * IBP_ERR_SERVER_PONG, carrying the node this host serves and its load. Nothing runs and nothing is in doubt;
 * the connection stays usable.
 */
import { IbpError } from '../core/errors.js';

/** The reserved app code of a ping pre-request. */
export const PING_APP = 'ibp ping';

/** What a pong's `details` hold. */
export interface PongDetails {
  node: string;
  busy: number;
  total: number;
}

/** The refusal that answers a ping. */
export function pingAnswer(node: string, load: { busy: number; total: number }): IbpError {
  const details: PongDetails = { node, busy: load.busy, total: load.total };
  return new IbpError('IBP_ERR_SERVER_PONG', `node ${node} answers (${load.busy}/${load.total} workers busy)`, { details: { ...details } });
}
