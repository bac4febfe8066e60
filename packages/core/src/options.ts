import { InvalidOptionError } from './errors/index.js';

/**
 * Validates one integer option and returns it; the message names the option
 * the way the user wrote it. Shared by every component's resolveOptions().
 */
export function checkIntegerOption(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidOptionError(`option ${name} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

/** Validates an optional option that must be a plain object (not null, not an array) and returns it. */
export function checkObjectOption<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new InvalidOptionError(`option ${name} must be an object, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

/**
 * Refuses option names the component does not know, so a misspelled option
 * fails loudly instead of silently keeping its default. `prefix` names the
 * option group (`codec.`) the way the user wrote it.
 */
export function checkKnownOptions(options: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
    const hint = near === undefined ? `known options: ${known.map((k) => prefix + k).join(', ')}` : `did you mean ${prefix}${near}?`;
    throw new InvalidOptionError(`unknown option ${prefix}${key} (${hint})`);
  }
}

/** Merges user options over defaults; a field set to `undefined` keeps its default. */
export function withDefaults<T extends object>(defaults: T, options: Partial<T>): T {
  const out = { ...defaults };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  }
  return out;
}
