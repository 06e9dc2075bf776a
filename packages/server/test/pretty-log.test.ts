import { describe, expect, it } from 'vitest';
import { prettyLine } from '../src/observability/logger.js';

// On a terminal (stdout is a TTY) lb-server's log records print as lines; piped or to a file they stay JSON.
describe('log lines on a terminal', () => {
  it('turns a pino record into one readable line', () => {
    const rec = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 12, 0, 1, 234),
      pid: 1,
      hostname: 'h',
      name: 'lb-server',
      msg: 'upstream attempt failed',
      endpoint: 'primary',
      status: 503,
    });
    expect(prettyLine(`${rec}\n`)).toBe(
      '12:00:01.234 WARN  upstream attempt failed  endpoint=primary status=503\n',
    );
  });

  it('passes anything that is not JSON through unchanged', () => {
    expect(prettyLine('plain text\n')).toBe('plain text\n');
  });
});
