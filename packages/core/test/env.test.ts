import { describe, expect, it } from 'vitest';
import { envText, parseEnvBool, parseEnvDuration, parseEnvNumber, processEnv } from '../src/internal.js';

// The rules every package reads environment variables by (@lb/config-env's table, the adapter, the breaker).
describe('environment variables', () => {
  it('read trimmed; unset, empty and blank are unset', () => {
    expect(envText({ A: ' x ', B: '', C: '   ' }, 'A')).toBe('x');
    expect(envText({ A: ' x ', B: '', C: '   ' }, 'B')).toBeUndefined();
    expect(envText({ A: ' x ', B: '', C: '   ' }, 'C')).toBeUndefined();
    expect(envText({}, 'D')).toBeUndefined();
    expect(processEnv()).toBe(process.env);
  });

  it('booleans: true/1/yes/on and false/0/no/off in any case, nothing else', () => {
    for (const t of ['true', 'TRUE', '1', 'yes', 'On', ' on ']) expect(parseEnvBool(t), t).toBe(true);
    for (const f of ['false', '0', 'No', 'off']) expect(parseEnvBool(f), f).toBe(false);
    for (const x of ['', 'y', 'enabled', '2']) expect(parseEnvBool(x), x).toBeUndefined();
  });

  it('numbers: decimal only', () => {
    expect(parseEnvNumber(' 12 ')).toBe(12);
    expect(parseEnvNumber('0.5')).toBe(0.5);
    expect(parseEnvNumber('-3')).toBe(-3);
    expect(parseEnvNumber('1e3')).toBe(1000);
    for (const x of ['', '0x10', '12abc', 'Infinity', 'NaN', '1,000'])
      expect(parseEnvNumber(x), x).toBeUndefined();
  });

  it('durations: a bare number in the variable’s unit, or text with units', () => {
    expect(parseEnvDuration('250', 'ms')).toBe(250);
    expect(parseEnvDuration('30', 's')).toBe(30_000);
    expect(parseEnvDuration('30s', 'ms')).toBe(30_000);
    expect(parseEnvDuration('30s', 's')).toBe(30_000);
    expect(parseEnvDuration('1m30s', 'ms')).toBe(90_000);
    expect(parseEnvDuration('500ms', 's')).toBe(500);
    for (const x of ['', 'soon', '-5', '5x', 's']) expect(parseEnvDuration(x, 'ms'), x).toBeUndefined();
  });
});
