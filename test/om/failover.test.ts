import { describe, expect, it } from 'vitest';
import { FailoverPlan, MAX_FAILOVERS } from '../../src/om/failover.js';
import { checkAdvertised, gssTarget, resolveServicePrincipal } from '../../src/om/principal.js';
import { AuthError, UsageError } from '../../src/errors.js';

const nodes = [
  { nodeId: 'om1', host: 'h1', port: 9862 },
  { nodeId: 'om2', host: 'h2', port: 9862 },
  { nodeId: 'om3', host: 'h3', port: 9862 },
];

function plan(retries = 2, count = 3) {
  return new FailoverPlan(nodes.slice(0, count), { waitBetweenRetriesMs: 1000, retries, random: () => 1 });
}

describe('HA failover decisions (OMFailoverProxyProviderBase)', () => {
  it('goes straight to the leader a not-leader answer names, when it is a configured node', () => {
    expect(plan().after('not-leader', 0, 'om3')).toEqual({ next: 2, waitMs: 0 });
  });

  it('walks the list when the suggested leader is unknown, absent or itself', () => {
    expect(plan().after('not-leader', 0, 'om9')).toEqual({ next: 1, waitMs: 0 });
    expect(plan().after('not-leader', 2, undefined)).toEqual({ next: 0, waitMs: 0 });
    expect(plan().after('not-leader', 1, 'om2')).toEqual({ next: 2, waitMs: 0 });
  });

  it('asks a leader that is not ready again, waiting longer each time', () => {
    const p = plan();
    expect(p.after('not-ready', 1)).toEqual({ next: 1, waitMs: 1000 });
    expect(p.after('not-ready', 1)).toEqual({ next: 1, waitMs: 2000 });
    expect(p.after('not-ready', 1)).toEqual({ next: 1, waitMs: 3000 });
  });

  it('skips an unreachable OM at once, and pauses only after a full round', () => {
    const p = plan(1);
    expect(p.after('unreachable', 0)).toEqual({ next: 1, waitMs: 0 });
    expect(p.after('unreachable', 1)).toEqual({ next: 2, waitMs: 0 });
    expect(p.after('unreachable', 2)).toEqual({ next: 0, waitMs: 250 });
    expect(p.after('unreachable', 0)).toEqual({ next: 1, waitMs: 0 });
    expect(p.after('unreachable', 1)).toEqual({ next: 2, waitMs: 0 });
    expect(p.after('unreachable', 2)).toBeUndefined(); // --retries 1: two rounds in all
  });

  it('retries a single unreachable OM --retries times with growing jittered waits', () => {
    const p = plan(2, 1);
    expect(p.after('unreachable', 0)).toEqual({ next: 0, waitMs: 250 });
    expect(p.after('unreachable', 0)).toEqual({ next: 0, waitMs: 500 });
    expect(p.after('unreachable', 0)).toBeUndefined();
  });

  it('waits between rounds of not-leader answers, and gives up after a bounded number of failovers', () => {
    const p = plan();
    expect(p.after('not-leader', 0)).toEqual({ next: 1, waitMs: 0 });
    expect(p.after('not-leader', 1)).toEqual({ next: 2, waitMs: 0 });
    expect(p.after('not-leader', 2)).toEqual({ next: 0, waitMs: 1000 });
    let steps = 3;
    while (p.after('not-leader', steps % 3)) steps++;
    expect(steps).toBe(MAX_FAILOVERS);
  });
});

describe('the OM service principal', () => {
  it('replaces _HOST with the OM host as configured, lower-cased, and keeps the realm', () => {
    const p = resolveServicePrincipal('om/_HOST@EXAMPLE.COM', 'OM1.Example.com');
    expect(p).toEqual({ service: 'om', host: 'om1.example.com', realm: 'EXAMPLE.COM' });
    expect(gssTarget(p)).toEqual({ target: 'om/om1.example.com@EXAMPLE.COM', targetType: 'principal' });
  });

  it('defaults to om/<host> imported host-based, so krb5.conf maps the realm', () => {
    const p = resolveServicePrincipal(undefined, 'om1.example.com');
    expect(gssTarget(p)).toEqual({ target: 'om@om1.example.com', targetType: 'host-based' });
  });

  it('keeps an explicit host and refuses malformed patterns', () => {
    expect(resolveServicePrincipal('om/fixed.host@R', 'other').host).toBe('fixed.host');
    expect(() => resolveServicePrincipal('om@host', 'h')).toThrow(UsageError);
  });

  it("compares the server's advertised protocol/serverId with the expected principal, naming both", () => {
    const p = resolveServicePrincipal('om/_HOST@R', 'om1');
    expect(() => checkAdvertised(p, 'om', 'om1', 'om1:9862')).not.toThrow();
    let error: AuthError | undefined;
    try {
      checkAdvertised(p, 'om', 'om2.example.com', 'om1:9862');
    } catch (e) {
      error = e as AuthError;
    }
    expect(error?.code).toBe('OM_PRINCIPAL_MISMATCH');
    expect(error?.exitCode).toBe(3);
    expect(error?.message).toBe('the OM at om1:9862 runs as om/om2.example.com, but ozs3 expected om/om1@R');
  });
});
