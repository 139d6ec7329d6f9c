/**
 * A SecretService for in-process command tests, in the manner of cli/cli's stub registry: each call
 * must have been expected, in the order expected for that user; anything else fails the test.
 */
import type { Deps, InterruptSignal } from '../../src/deps.js';
import type { S3Secret, SecretService } from '../../src/service/secret-service.js';
import { createTestIO, type TestIOOptions } from './test-io.js';

type Op = 'get' | 'revoke' | 'set';
type Answer = S3Secret | Error | undefined;

interface Expectation {
  op: Op;
  user: string | undefined;
  answer: Answer | (() => Promise<Answer>);
}

export interface FakeService extends SecretService {
  /** The calls made, in the order they started. */
  readonly calls: { op: Op; user: string | undefined }[];
  /** Expect `op` for `user` next (per user), answering `answer` (a thrown Error, or a function for timing). */
  expect(op: Op, user: string | undefined, answer: Expectation['answer']): FakeService;
  /** Throws when an expected call was never made. */
  assertDone(): void;
  closed: boolean;
}

export function secretOf(user: string, n = 1): S3Secret {
  return { awsAccessKey: user, awsSecret: `secret-${user}-${n}` };
}

export function createFakeService(): FakeService {
  const queues = new Map<string, Expectation[]>();
  const calls: { op: Op; user: string | undefined }[] = [];
  const key = (user: string | undefined) => user ?? '(own)';
  const take = async (op: Op, user: string | undefined): Promise<S3Secret | undefined> => {
    calls.push({ op, user });
    const next = queues.get(key(user))?.shift();
    if (!next || next.op !== op) {
      // Not an Ozs3Error: the command reports it as a bug and the test fails loudly.
      throw new Error(`unexpected call ${op} ${key(user)}${next ? ` (expected ${next.op})` : ''}`);
    }
    const answer = typeof next.answer === 'function' ? await next.answer() : next.answer;
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const fake: FakeService = {
    transport: 'rest',
    authenticatedPrincipal: undefined,
    calls,
    closed: false,
    expect(op, user, answer) {
      const queue = queues.get(key(user)) ?? [];
      queue.push({ op, user, answer });
      queues.set(key(user), queue);
      return fake;
    },
    assertDone() {
      const left = [...queues.entries()].flatMap(([user, q]) => q.map((e) => `${e.op} ${user}`));
      if (left.length > 0) throw new Error(`expected calls not made: ${left.join(', ')}`);
    },
    async getSecret(user) {
      return (await take('get', user))!;
    },
    async revokeSecret(user) {
      await take('revoke', user);
    },
    async setSecret(user) {
      return (await take('set', user))!;
    },
    async close() {
      fake.closed = true;
    },
  };
  return fake;
}

/** Deps for an in-process run: a test IO, a fake service, signals the test sends itself. */
export function fakeDeps(service: SecretService | undefined, io: TestIOOptions = {}, extra: Partial<Deps> = {}) {
  const t = createTestIO(io);
  let handler: ((signal: InterruptSignal) => void) | undefined;
  const deps: Deps = {
    io: t.io,
    env: {},
    cwd: '/',
    homedir: '/nonexistent-home',
    onInterrupt: (h) => {
      handler = h;
      return () => (handler = undefined);
    },
    openService: service
      ? () => Promise.resolve(service)
      : () => Promise.reject(new Error('this run must not open a connection')),
    ...extra,
  };
  return { deps, ...t, interrupt: (signal: InterruptSignal = 'SIGINT') => handler?.(signal) };
}
