export * from './errors.js';
export * from './home.js';
export * from './atomic-file.js';
export * from './cluster-model.js';
export * from './log.js';
export * from './config/index.js';
