import { describe, expect, it } from 'vitest';
import {
  CLIENT_MAX_BUFFER,
  chooseLayer,
  layerChoice,
  parseLayerOffer,
  parseProtection,
  type Protection,
} from '../../src/om/layers.js';
import { AuthError } from '../../src/errors.js';

describe('RFC 4752 security-layer negotiation', () => {
  it('reads the offer: a bitmask of layers (1 none, 2 integrity, 4 privacy) and a 3-byte max buffer', () => {
    expect(parseLayerOffer(Buffer.from('07010000', 'hex'))).toEqual({
      offered: ['privacy', 'integrity', 'authentication'],
      maxBuffer: 65536,
    });
    expect(parseLayerOffer(Buffer.from('02ffffff', 'hex'))).toEqual({ offered: ['integrity'], maxBuffer: 0xffffff });
  });

  it('refuses an offer that is not 4 bytes or names no layer', () => {
    expect(() => parseLayerOffer(Buffer.from('0701', 'hex'))).toThrow(AuthError);
    expect(() => parseLayerOffer(Buffer.from('08010000', 'hex'))).toThrow(/names no layer/);
  });

  it.each<[string, Protection[] | undefined, Protection]>([
    ['07', undefined, 'privacy'],
    ['03', undefined, 'integrity'],
    ['01', undefined, 'authentication'],
    ['04', undefined, 'privacy'],
    ['07', ['integrity'], 'integrity'],
    ['07', ['authentication', 'integrity'], 'integrity'],
    ['05', ['authentication'], 'authentication'],
  ])('offer %s with hadoop.rpc.protection %j: chooses %s (the strongest both allow)', (mask, allowed, expected) => {
    expect(chooseLayer(parseLayerOffer(Buffer.from(`${mask}010000`, 'hex')), allowed)).toBe(expected);
  });

  it('fails with the fix when the OM requires a layer the configuration does not allow', () => {
    let error: AuthError | undefined;
    try {
      chooseLayer(parseLayerOffer(Buffer.from('04010000', 'hex')), ['integrity']);
    } catch (e) {
      error = e as AuthError;
    }
    expect(error?.code).toBe('OM_PROTECTION_MISMATCH');
    expect(error?.exitCode).toBe(3);
    expect(error?.message).toBe('the OM requires privacy but hadoop.rpc.protection here allows only integrity');
    expect(error?.hint).toMatch(/hadoop\.rpc\.protection/);
  });

  it('answers with one layer bit and its own max buffer, and no authorization id (4 bytes)', () => {
    expect(layerChoice('privacy').toString('hex')).toBe('04010000');
    expect(layerChoice('integrity').toString('hex')).toBe('02010000');
    expect(layerChoice('authentication').toString('hex')).toBe('01010000');
    expect(layerChoice('privacy', 2 ** 30).toString('hex')).toBe('04ffffff');
    expect(CLIENT_MAX_BUFFER).toBe(65536);
  });

  it('reads hadoop.rpc.protection lists, in any case, and rejects unknown names', () => {
    expect(parseProtection(undefined)).toBeUndefined();
    expect(parseProtection(' ')).toBeUndefined();
    expect(parseProtection('Privacy, integrity,privacy')).toEqual(['privacy', 'integrity']);
    expect(() => parseProtection('secret')).toThrow(/invalid hadoop\.rpc\.protection 'secret'/);
  });
});
