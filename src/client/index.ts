/** The IBP client library: call transactions on server nodes. See docs/client.md. */
export { IbacEnv, IbacConnection, CallResponse, type IbacEnvOptions, type CallOptions, type MessageBody } from './env.js';
export { callMany, multiCommStatus, type MultiCall, type MultiResult, type CallManyOptions } from './multi.js';
export type { ChosenHost } from './host-choice.js';
export { IbpError, type CommStatus, type ErrorCode } from '../core/errors.js';
export { runTwoPhase, type TwoPhaseParticipant, type TwoPhaseOptions, type TwoPhaseResult, type TwoPhaseParticipantResult } from './two-phase.js';
export { recoverTwoPhase, type RecoverOptions, type RecoveredTransaction } from './two-phase-recover.js';
export type { TwoPhaseVote, PhaseTwoAck } from './two-phase-calls.js';
export { DecisionLog, isXid, readCoordinatorId, type TwoPhaseDecision, type TwoPhaseLogEntry, type TwoPhaseLogState, type TwoPhaseHostRef, type LoggedParticipant } from './two-phase-log.js';
export { askDecision, answerDecisionRequest, type AskDecisionOptions, type AskedDecision } from './two-phase-decision.js';
export {
  TWO_PC_DECISION_APP, looksLikeTwoPhaseEnvelope, decodeTwoPhaseEnvelope, encodeTwoPhaseEnvelope,
  type TwoPhaseHeader, type TwoPhaseEnvelope, type TwoPhasePhase, type CoordinatorRef,
} from './two-phase-wire.js';
