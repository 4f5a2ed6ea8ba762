/**
 * A two-phase coordinator in a process of its own, for crash tests: `node two-phase-coordinator.js '<json>'`
 * with `{ home, participants, options }` runs `runTwoPhase` and prints the result as one JSON line. With
 * `IBP_2PC_FAULT=after_begin|before_decision|after_decision` it kills itself (SIGKILL) at that step.
 */
import { IbacEnv, runTwoPhase, type TwoPhaseOptions, type TwoPhaseParticipant } from '../../src/client/index.js';

const { home, participants, options } = JSON.parse(process.argv[2] ?? '{}') as { home: string; participants: TwoPhaseParticipant[]; options: TwoPhaseOptions };
const env = await IbacEnv.create({ home });
try {
  const r = await runTwoPhase(env, participants, options);
  process.stdout.write(`${JSON.stringify({ xid: r.xid, outcome: r.outcome, complete: r.complete, decidedBy: r.decidedBy })}\n`);
} finally {
  await env.close();
}
