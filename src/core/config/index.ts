/**
 * The config reader: lenient JSON, one schema per config file (the original's option names), loaders that
 * return validated, deep-frozen configs, the cluster model loader and its cross-reference check, and the
 * default files the `init` commands write. See docs/config.md.
 */
export { parseLenientJson, parseLenientDocument, MAX_CONFIG_DEPTH } from './lenient-json.js';
export type { ConfigSourcePos, ConfigLocation, LenientDocument } from './lenient-json.js';
export {
  loadIbasConf, loadIbmaConf, loadIbmsConf, parseIbasConf, parseIbmaConf, parseIbmsConf,
  loadClusterConfig, parseClusterConfig, parseNodesConf, parseAppsConf, parseProjectsConf, readConfigText,
} from './load.js';
export type { IbasConfig, IbmaConfig, IbmsConfig, ConfigSource, ClusterConfigFiles } from './load.js';
export { validateClusterConfig, findClusterProblems } from './validate-cluster.js';
export type { ClusterFinding, ClusterFileKind } from './validate-cluster.js';
export { defaultIbasConfText, defaultIbmaConfText, defaultIbmsConfText } from './default-texts.js';
export type { DefaultIbasConfOptions, DefaultIbmaConfOptions } from './default-texts.js';
export { formatClusterConfig, defaultClusterConfTexts } from './cluster-texts.js';
export type { ClusterConfTexts } from './cluster-texts.js';
export { IBAS_MPM_MODES, IBAS_DEFAULTS, IBMA_DEFAULTS, IBMS_DEFAULTS } from './schemas.js';
export type { IbasMpmMode } from './schemas.js';
export { CONFIG_LOG_LEVELS, parseConfigLogLevel } from './log-section.js';
export type { ConfigLogLevel } from './log-section.js';
export { formatConfigPath } from './problems.js';
export { IBCMD_DEFAULTS, defaultIbcmdConfText, loadIbcmdConf, parseIbcmdConf } from './ibcmd-conf.js';
export type { IbcmdConfig } from './ibcmd-conf.js';
