/** What the outside world is, handed to every command so tests can replace it. */
import type { Dispatcher } from 'undici';
import type { IO } from './io.js';

export interface Deps {
  io: IO;
  /** The process environment; keytab login writes KRB5CCNAME / KRB5_CLIENT_KTNAME into it. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  homedir: string;
  /** Replaces the HTTP dispatcher (undici MockAgent in unit tests). */
  dispatcher?: Dispatcher;
}
