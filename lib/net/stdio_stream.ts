/**
 * This process's stdin and stdout as one byte stream, for a splice: what `ssh`'s ProxyCommand
 * (`tml rendezvous connect`) talks through. A half-close closes stdout, which is how the
 * program on the other end of the pipes sees end-of-file; a close closes both.
 */
import type { ByteStream } from "./splice.ts";

export function stdioStream(): ByteStream {
  let stdoutClosed = false;
  const closeStdout = () => {
    if (stdoutClosed) return;
    stdoutClosed = true;
    Deno.stdout.close();
  };
  return {
    read: (buffer) => Deno.stdin.read(buffer),
    write: (bytes) => Deno.stdout.write(bytes),
    closeWrite: closeStdout,
    close: () => {
      closeStdout();
      // Also ends a read waiting on stdin, so a splice finishes when the other side is gone.
      try {
        Deno.stdin.close();
      } catch {
        // Already closed.
      }
    },
  };
}
