import type { PayloadCodec } from '@heartwire/core';
import type { Handler } from '../calls/handler.js';
import type { ResolvedServerOptions } from '../options.js';
import type { Connection } from './connection.js';
import type { ParamsBudget } from './params-budget.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions;
  readonly codec: PayloadCodec;
  lookup(method: string): Handler | undefined;
  /** What every connection's calls may hold of CALL payloads. */
  readonly paramsBudget: ParamsBudget;
  onConnectionClosed(connection: Connection): void;
}
