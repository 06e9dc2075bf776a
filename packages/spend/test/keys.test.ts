import { createHash } from 'node:crypto';
import { isLbError } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { isSpendError, KeyRing, sha256Hex } from '../src/index.js';
import { spendErrorOf } from './helpers.js';

const T0 = Date.UTC(2027, 5, 30, 12);

describe('KeyRing', () => {
  const teamA = fakeKey('team-a');
  const teamB = fakeKey('team-b');
  const legacy = fakeKey('legacy');

  it('finds a named key by its secret and an unnamed LB_API_KEYS key, never an unknown one', () => {
    const ring = new KeyRing([{ name: 'team-a', key: teamA, models: ['gpt-4o-mini'], rpm: 60 }], {
      apiKeys: [legacy],
    });
    expect(ring.size).toBe(2);
    const a = ring.lookup(teamA);
    expect(a?.name).toBe('team-a');
    expect(a?.id).toBe('team-a');
    expect(a?.limits.rpm).toBe(60);
    const l = ring.lookup(legacy);
    expect(l?.name).toBeUndefined();
    expect(l?.id).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(l?.hasBudget).toBe(false);
    expect(l?.allows('anything')).toBe(true);
    expect(ring.lookup(teamB)).toBeUndefined();
    expect(ring.lookup('')).toBeUndefined();
    expect(ring.lookup(undefined)).toBeUndefined();
  });

  it('accepts key_sha256 so that the file holds no secret', () => {
    const hex = createHash('sha256').update(teamB).digest('hex');
    expect(sha256Hex(teamB)).toBe(hex);
    const ring = new KeyRing([{ name: 'team-b', keySha256: hex.toUpperCase(), budgetUsdDay: 5 }]);
    expect(ring.lookup(teamB)?.name).toBe('team-b');
    expect(ring.lookup(teamA)).toBeUndefined();
  });

  it('holds no secret: nothing it shows contains the key', () => {
    const ring = new KeyRing([{ name: 'team-a', key: teamA }], { apiKeys: [legacy] });
    const shown = JSON.stringify([ring.list(), ring.lookup(legacy), ring.lookup(teamA)]);
    expect(shown).not.toContain(teamA);
    expect(shown).not.toContain(legacy);
    expect(shown).toContain('team-a');
  });

  it('refuses an unknown key with 401 invalid_api_key', () => {
    const ring = new KeyRing([{ name: 'team-a', key: teamA }]);
    const e = spendErrorOf(() => ring.authorize(teamB, 'gpt-4o'));
    expect(isSpendError(e) && isLbError(e)).toBe(true);
    expect(e.status).toBe(401);
    expect(e.code).toBe('invalid_api_key');
    expect(e.message).not.toContain(teamB);
    expect(e.toOpenAIError().error.code).toBe('invalid_api_key');
  });

  it('refuses a model the key may not use with 403 model_not_allowed; groups count as models', () => {
    const ring = new KeyRing([{ name: 'team-a', key: teamA, models: ['gpt-4o-mini', 'fast'] }]);
    expect(ring.authorize(teamA, 'gpt-4o-mini').name).toBe('team-a');
    expect(ring.authorize(teamA, 'fast').name).toBe('team-a');
    expect(ring.authorize(teamA, undefined).name).toBe('team-a');
    const e = spendErrorOf(() => ring.authorize(teamA, 'gpt-4o'));
    expect(e.status).toBe(403);
    expect(e.code).toBe('model_not_allowed');
    expect(e.param).toBe('model');
    expect(e.message).toContain('"gpt-4o"');
    expect(e.message).toContain('gpt-4o-mini, fast');
    expect(e.keyName).toBe('team-a');
  });

  it('a date expiry lasts through that UTC day; then 401 key_expired with a clear message', () => {
    let now = T0;
    const ring = new KeyRing([{ name: 'team-a', key: teamA, expires: '2027-06-30' }], { now: () => now });
    expect(ring.authorize(teamA, 'gpt-4o').expiresAt).toBe(Date.UTC(2027, 6, 1));
    now = Date.UTC(2027, 6, 1) - 1;
    expect(ring.authorize(teamA).name).toBe('team-a');
    now = Date.UTC(2027, 6, 1);
    const e = spendErrorOf(() => ring.authorize(teamA, 'gpt-4o'));
    expect(e.status).toBe(401);
    expect(e.code).toBe('key_expired');
    expect(e.message).toBe('API key "team-a" expired at 2027-07-01T00:00:00.000Z; ask for a new key.');
    // a timestamp is exact
    const r2 = new KeyRing([{ name: 'b', key: teamB, expires: '2027-06-30T12:00:00Z' }], { now: () => T0 });
    expect(spendErrorOf(() => r2.authorize(teamB)).code).toBe('key_expired');
  });

  it('validates entries, naming the path', () => {
    expect(() => new KeyRing([{ name: 'a' }])).toThrow('keys[0]: set exactly one of key and key_sha256');
    expect(() => new KeyRing([{ name: 'a', key: teamA, keySha256: sha256Hex(teamA) }])).toThrow(
      'exactly one',
    );
    expect(() => new KeyRing([{ name: 'a', keySha256: 'abc' }])).toThrow(
      'keys[0].key_sha256: expected 64 hex digits',
    );
    expect(() => new KeyRing([{ name: 'a', key: teamA, budgetUsdDay: -1 }])).toThrow(
      'keys[0].budget_usd_day',
    );
    expect(() => new KeyRing([{ name: 'a', key: teamA, expires: 'soon' }])).toThrow('keys[0].expires');
    expect(
      () =>
        new KeyRing([
          { name: 'a', key: teamA },
          { name: 'a', key: teamB },
        ]),
    ).toThrow('keys[1].name: duplicate key name "a"');
    expect(
      () =>
        new KeyRing([
          { name: 'a', key: teamA },
          { name: 'b', key: teamA },
        ]),
    ).toThrow('keys[1]: the same secret as key "a"');
  });

  it('a named key wins over the same secret in LB_API_KEYS; keys can be added and revoked', () => {
    const ring = new KeyRing([{ name: 'team-a', key: teamA, budgetUsdDay: 1 }], { apiKeys: [teamA, legacy] });
    expect(ring.lookup(teamA)?.name).toBe('team-a');
    ring.add({ name: 'team-b', key: teamB });
    expect(ring.byName('team-b')?.name).toBe('team-b');
    expect(ring.remove('team-b')).toBe(true);
    expect(ring.lookup(teamB)).toBeUndefined();
    expect(ring.remove('team-b')).toBe(false);
  });
});

describe('KeyRing: keys made at run time (the admin API)', () => {
  it('creates a key with a fresh secret shown once; its config holds only the SHA-256 and restores it', () => {
    const ring = new KeyRing();
    const { key, secret } = ring.create({
      name: 'team-c',
      models: ['gpt-4o-mini'],
      rpm: 10,
      budgetUsdDay: 5,
      expires: '2027-06-30',
    });
    expect(secret).toMatch(/^sk-lb-[A-Za-z0-9_-]{43}$/);
    expect(ring.lookup(secret)?.name).toBe('team-c');
    const saved = key.toConfig();
    expect(JSON.stringify(saved)).not.toContain(secret);
    expect(saved).toEqual({
      name: 'team-c',
      keySha256: sha256Hex(secret),
      models: ['gpt-4o-mini'],
      rpm: 10,
      budgetUsdDay: 5,
      expires: Date.UTC(2027, 6, 1),
    });
    // After a restart: the saved config brings the same key back.
    const again = new KeyRing([saved]);
    expect(again.lookup(secret)?.toConfig()).toEqual(saved);
    expect(ring.create({ name: 'team-d' }).secret).not.toBe(secret);
  });
});
