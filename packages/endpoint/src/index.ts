export { closeSockets, type CloseMode, type ConnectionSockets } from './close.js';
export { writeQueueProbe } from './write-queue.js';
export { yieldToLoop } from './yield.js';
