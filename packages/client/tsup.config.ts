import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base';

/**
 * As every package, except that its declarations keep `@internal` members:
 * `HeartwireClient` declares `implements FrameSink` while its `writeFrames`
 * is `@internal`, and stripping it would ship a class that does not
 * implement its own interface (test/pack-install.test.ts type-checks the
 * shipped declarations).
 */
export default defineConfig({ ...(base as Options), dts: true });
