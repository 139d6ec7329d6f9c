/**
 * Synchronous, checked writes to a file descriptor. Its own module, free of imports beyond node:fs,
 * because bin/ozs3's help fast path (dist/fast-path.cjs) uses it too.
 */
import { writeSync } from 'node:fs';

let sleeper: Int32Array | undefined;

/** Writes all of `data` to `fd`, waiting out EAGAIN (a non-blocking pipe that is full). */
export function writeAllSync(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      sleeper ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(sleeper, 0, 0, 5);
    }
  }
}

export function describeErrno(code: string): string {
  switch (code) {
    case 'EPIPE':
      return 'EPIPE: the reading end of the pipe is closed';
    case 'ENOSPC':
      return 'ENOSPC: no space left on the device';
    case 'EBADF':
      return 'EBADF: stdout is closed';
    case 'EDQUOT':
      return 'EDQUOT: disk quota exceeded';
    case 'EFBIG':
      return 'EFBIG: file too large';
    default:
      return code;
  }
}
