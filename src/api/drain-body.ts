/**
 * Reading and discarding the rest of a request body that is refused (413
 * M_TOO_LARGE) before answering. The answer closes the connection; a client
 * still writing its body into a closed connection gets a reset (EPIPE,
 * ECONNRESET) and may never read the answer. Draining first lets it finish
 * writing and then read the 413. Bounded in bytes and time, so that a client
 * announcing or sending a huge body cannot keep the server reading.
 */
import type { IncomingMessage } from 'node:http';

/** At most this many bytes of a refused body are read and discarded. */
export const DRAIN_MAX_BYTES = 8 * 1024 * 1024;
/** At most this long is spent draining a refused body. */
export const DRAIN_MAX_MS = 2_000;

/**
 * Resolves once the request's body has been read to its end (discarded),
 * or the bounds are reached, or the request failed or closed. A body whose
 * announced Content-Length is over `maxBytes` is not read at all.
 */
export function drainRequestBody(req: IncomingMessage, maxBytes = DRAIN_MAX_BYTES, maxMs = DRAIN_MAX_MS): Promise<void> {
  if (req.complete || req.readableEnded || req.destroyed) return Promise.resolve();
  const announced = Number(req.headers['content-length']);
  if (Number.isFinite(announced) && announced > maxBytes) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let read = 0;
    const done = () => {
      clearTimeout(timer);
      req.removeListener('data', onData);
      req.removeListener('end', done);
      req.removeListener('error', done);
      req.removeListener('close', done);
      resolve();
    };
    const onData = (chunk: Buffer | string) => {
      read += chunk.length;
      if (read > maxBytes) done();
    };
    const timer = setTimeout(done, maxMs);
    req.on('data', onData);
    req.once('end', done);
    req.once('error', done);
    req.once('close', done);
    req.resume();
  });
}
