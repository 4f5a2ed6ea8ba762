export type { TransactionContext, AppEntry } from './context.js';
