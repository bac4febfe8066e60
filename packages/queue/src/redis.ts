import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import { InvalidOptionError } from '@heartwire/core';

/**
 * A connection of heartwire's own next to BullMQ's, made from the same
 * connection option (BullMQ's connections are busy with blocking reads, and a
 * subscriber cannot send commands). An ioredis instance is duplicated, never
 * shared: closing ours leaves the caller's alone.
 */
export function ownConnection(connection: ConnectionOptions | undefined, option: string, overrides: RedisOptions = {}): Redis {
  if (connection === undefined) return new Redis(overrides);
  if (typeof connection !== 'object' || connection === null) {
    throw new InvalidOptionError(`option ${option} must be ioredis options or an ioredis instance`);
  }
  const maybe = connection as { duplicate?: unknown; isCluster?: unknown; options?: unknown };
  if (maybe.isCluster === true) throw new InvalidOptionError(`option ${option}: a Redis Cluster is not supported`);
  if (typeof maybe.duplicate === 'function' && maybe.options !== undefined) return (connection as Redis).duplicate(overrides);
  return new Redis({ ...(connection as RedisOptions), ...overrides });
}
