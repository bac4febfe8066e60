import { describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_BRIDGE_OPTIONS, resolveHttpBridgeOptions } from '../src/index.js';
import { negotiateFormat } from '../src/negotiate.js';
import { encodeEvent } from '../src/wire.js';
import { LineReader } from '../src/client/line-reader.js';

describe('negotiateFormat', () => {
  it('picks server-sent events only when Accept names text/event-stream with a non-zero q', () => {
    expect(negotiateFormat(undefined)).toBe('ndjson');
    expect(negotiateFormat('*/*')).toBe('ndjson');
    expect(negotiateFormat('application/x-ndjson')).toBe('ndjson');
    expect(negotiateFormat('text/event-stream')).toBe('sse');
    expect(negotiateFormat('application/json, Text/Event-Stream;q=0.5')).toBe('sse');
    expect(negotiateFormat('text/event-stream;q=0')).toBe('ndjson');
    expect(negotiateFormat(['text/html', 'text/event-stream'])).toBe('sse');
  });
});

describe('encodeEvent', () => {
  it('NDJSON: one line per event; SSE: the same JSON in one data line under its event name', () => {
    const event = { type: 'progress', data: 'two\nlines' } as const;
    expect(encodeEvent('ndjson', event)).toBe('{"type":"progress","data":"two\\nlines"}\n');
    expect(encodeEvent('sse', event)).toBe('event: progress\ndata: {"type":"progress","data":"two\\nlines"}\n\n');
  });
});

describe('LineReader', () => {
  it('gives the same lines whatever the chunking, multi-byte characters split included, and drops filler', () => {
    const text = '{"type":"accepted"}\n\n\n{"type":"progress","data":"é€😀"}\n\n{"type":"result","data":1}\n';
    const bytes = new TextEncoder().encode(text);
    const whole = new LineReader().push(bytes);
    expect(whole).toEqual(['{"type":"accepted"}', '{"type":"progress","data":"é€😀"}', '{"type":"result","data":1}']);
    for (let split = 1; split < bytes.length; split++) {
      const reader = new LineReader();
      expect([...reader.push(bytes.subarray(0, split)), ...reader.push(bytes.subarray(split))]).toEqual(whole);
    }
  });
});

describe('resolveHttpBridgeOptions', () => {
  it('applies the defaults and names a bad or unknown option', () => {
    expect(resolveHttpBridgeOptions()).toEqual(DEFAULT_HTTP_BRIDGE_OPTIONS);
    expect(() => resolveHttpBridgeOptions({ heartbeatMs: 0 })).toThrow(/heartbeatMs/);
    expect(() => resolveHttpBridgeOptions({ silentMS: 5 } as never)).toThrow(/did you mean silentMs/);
  });
});
