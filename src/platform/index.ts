export { WorkerPool, type WorkerPoolOptions } from './worker-pool.js';
export { runMaster, runningPid, isProcessAlive, type RunningMaster, type RunMasterOptions } from './master-run.js';
export { readUpgradeStatus, upgradeStatusPathOf, upgradeReadyTimeoutMs, type UpgradeStatus } from './upgrade.js';
export { resolvePlatformSettings, instanceName, pidPathOf, boardPathOf, type PlatformSettings, type MpmMode } from './settings.js';
export { statsPathOf, type DynamicPoolSettings } from './settings.js';
export { readStatsFile, type PlatformStatsFile, type AppStatsRow } from './app-stats.js';
export { PING_APP, type PongDetails } from './ping-answer.js';
export { BoardReader, type BoardView, type SlotView, type WorkerState } from './bulletin-board.js';
export { ParticipantRecords, participantDirOf, type ParticipantRecord, type ParticipantState } from './two-phase-records.js';
