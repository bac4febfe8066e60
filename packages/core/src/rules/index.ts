export { callRule, unknownCallViolation, type CallRule } from './call-rules.js';
export { frameRule, type FrameRule } from './frame-rules.js';
export { carriesCalls, type ClientPhase, type Phase, type Role, type ServerPhase } from './phases.js';
export { streamViolation } from './stream-ids.js';
