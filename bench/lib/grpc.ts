/**
 * The @grpc/grpc-js side of the comparisons: one service with raw-bytes
 * methods (no protobuf, so both libraries carry the same msgpack bodies), and
 * keepalive options that match heartwire's heartbeat interval and silent bound.
 */
import * as grpc from '@grpc/grpc-js';

const bytes = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

/** `Call`: unary, bytes in and out. `Job`: server streaming, for long jobs that report progress. */
export const benchService = {
  call: { path: '/heartwire.bench.Bench/Call', requestStream: false, responseStream: false, ...bytes },
  job: { path: '/heartwire.bench.Bench/Job', requestStream: false, responseStream: true, ...bytes },
} satisfies grpc.ServiceDefinition;

/** A client class for {@link benchService}: `new BenchClient(address, credentials, options)`. */
export const BenchClient = grpc.makeGenericClientConstructor(benchService, 'Bench');

/**
 * Channel/server options for keepalive pings every `intervalMs`, with the
 * connection dropped when a ping is unanswered for `timeoutMs` (heartwire's
 * heartbeatMs and silentMs). The permit and min-interval options stop either
 * side from refusing pings that come this often.
 */
export function keepaliveOptions(intervalMs: number, timeoutMs: number): grpc.ChannelOptions {
  return {
    'grpc.keepalive_time_ms': intervalMs,
    'grpc.keepalive_timeout_ms': timeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': Math.min(intervalMs, 1000),
    'grpc.http2.max_pings_without_data': 0,
  };
}
