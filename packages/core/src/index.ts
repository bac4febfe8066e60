export * from './errors/index.js';
export {
  CALL_FRAME_TYPES,
  CONNECTION_FRAME_TYPES,
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_HANDSHAKE_FRAME_BYTES,
  MAX_STREAM_ID,
  MIN_MAX_FRAME_BYTES,
  PING_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
} from './protocol.js';
export { checkStreamId, encodeFrame, writeFrameHeader, type Frame } from './frame.js';
export { FrameDecoder, type FrameAdmission, type FrameDecoderOptions, type FrameReceiver } from './decoder.js';
export { DEFAULT_CODEC_LIMITS, PayloadCodec, resolveCodecLimits, type CodecLimits } from './codec.js';
export {
  decodeCall,
  decodeCallError,
  decodeGoAway,
  decodeHello,
  decodePingPayload,
  decodeWelcome,
  encodeCall,
  encodeCallError,
  encodeGoAway,
  encodeHello,
  encodePingPayload,
  encodeWelcome,
  type CallErrorBody,
  type GoAwayBody,
  type Hello,
  type Welcome,
} from './messages.js';
export { negotiate, type ServerTerms } from './handshake.js';
export {
  Liveness,
  type LivenessAction,
  type LivenessOptions,
  type LivenessState,
  type LivenessVerdict,
} from './liveness.js';
export * from './rules/index.js';
export { checkIntegerOption, checkKnownOptions, checkObjectOption, withDefaults } from './options.js';
