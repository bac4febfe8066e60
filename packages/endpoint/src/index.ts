export { nodeCodecHost } from './codec-host.js';
export { closeConnection, closeSockets, type CloseMode, type ConnectionSockets } from './close.js';
export { Endpoint, type EndpointLimits, type EndpointRole, type EndpointSockets } from './endpoint.js';
export { EARLY_FLUSH_BYTES, FrameBatch, LARGE_PAYLOAD_BYTES, type FrameBatchOptions, type FrameSink } from './frame-batch.js';
export {
  LivenessTimer,
  type LivenessDriver,
  type LivenessEffect,
  type Scheduler,
  type SchedulerTimer,
  type TimerTarget,
} from './liveness-timer.js';
export { TimerWheel, WheelTimer } from './timer-wheel.js';
export type { Failure } from './failure.js';
export { TIMER_RESOLUTION_MS, wheelScheduler } from './scheduler.js';
export { writeQueueBytes } from './write-queue.js';
export { yieldToLoop, type AbortState } from './yield.js';
