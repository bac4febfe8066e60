import { describe, expect, it } from 'vitest';
import { AddressLimit } from '../src/listen/address-limit.js';
import { PARAMS_FLOOR_BYTES, ParamsBudget } from '../src/connection/params-budget.js';

const KiB = 1024;

describe('ParamsBudget and its per-connection accounts', () => {
  it('a charge must fit the connection share and the server budget; a refused charge changes nothing', () => {
    const budget = new ParamsBudget(1000 * KiB, 300 * KiB);
    const a = budget.account();
    expect(a.charge(1, 200 * KiB)).toBe(true);
    expect(a.charge(3, 101 * KiB)).toBe(false);
    expect([a.held, budget.held]).toEqual([200 * KiB, 200 * KiB]);
    expect(a.charge(3, 100 * KiB)).toBe(true);
    expect(budget.held).toBe(300 * KiB);
  });

  it('past the server budget, a connection still gets its first PARAMS_FLOOR_BYTES', () => {
    const budget = new ParamsBudget(100 * KiB, 100 * KiB);
    const heavy = budget.account();
    expect(heavy.charge(1, 100 * KiB)).toBe(true);
    const light = budget.account();
    expect(light.charge(1, PARAMS_FLOOR_BYTES + 1)).toBe(false);
    expect(light.charge(1, PARAMS_FLOOR_BYTES)).toBe(true);
    expect(light.charge(3, 1)).toBe(false);
    expect(budget.held).toBe(100 * KiB + PARAMS_FLOOR_BYTES);
  });

  it('claim hands the charge of the CALL just read to its call once; release and close give it back', () => {
    const budget = new ParamsBudget(1000, 1000);
    const a = budget.account();
    a.charge(5, 40);
    expect(a.claim(7)).toBe(0);
    expect(a.claim(5)).toBe(40);
    expect(a.claim(5)).toBe(0);
    a.release(40);
    expect([a.held, budget.held]).toEqual([0, 0]);
    a.charge(9, 30);
    a.charge(11, 20);
    a.close();
    expect([a.held, budget.held, a.claim(11)]).toEqual([0, 0, 0]);
  });
});

describe('AddressLimit', () => {
  it('counts per address as given, refuses past the limit, and frees a slot on remove', () => {
    const limit = new AddressLimit(2);
    expect([limit.tryAdd('10.0.0.1'), limit.tryAdd('10.0.0.1'), limit.tryAdd('10.0.0.1')]).toEqual([true, true, false]);
    expect(limit.tryAdd('::ffff:10.0.0.1')).toBe(true);
    limit.remove('10.0.0.1');
    expect([limit.tryAdd('10.0.0.1'), limit.tryAdd('10.0.0.1')]).toEqual([true, false]);
    limit.remove('10.0.0.1');
    limit.remove('10.0.0.1');
    expect([limit.tryAdd('10.0.0.1'), limit.tryAdd('10.0.0.1'), limit.tryAdd('10.0.0.1')]).toEqual([true, true, false]);
  });
});
