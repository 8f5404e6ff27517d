/**
 * The `replication` resource: `/_synapse/replication/<name>/<txnId>`, the
 * internal HTTP API between the processes of a worker deployment. Never
 * expose it publicly (the nginx generator never routes to it).
 *
 * - When `worker_replication_secret` is set, every request must carry
 *   `Authorization: Bearer <secret>` (compared in constant time), else
 *   403 M_FORBIDDEN.
 * - Unknown endpoint names answer 404 M_UNRECOGNIZED.
 * - With a txnId the answer is cached per (endpoint, txnId): a retry gets the
 *   first answer and the write happens once (ReplicationRegistry).
 */
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../../matrix/hashes.js';
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import type { MatrixRequest, Router } from '../types.js';

const digest = (s: string): Buffer => sha256(Buffer.from(s, 'utf8'));

// Every replication request checks the secret: its digest is computed once.
let secretDigest: { secret: string; digest: Buffer } | undefined;
const digestOfSecret = (secret: string): Buffer => {
  if (secretDigest?.secret !== secret) secretDigest = { secret, digest: digest(secret) };
  return secretDigest.digest;
};

/** Constant-time check of the Bearer secret (hashing first hides the length). */
export function replicationSecretMatches(header: string | undefined, secret: string): boolean {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  const given = m ? m[1]! : '';
  const ok = timingSafeEqual(digest(given), digestOfSecret(secret));
  return ok && m !== null;
}

export function replicationRoutes(r: Router, s: Services): void {
  const handle = async (req: MatrixRequest) => {
    const secret = s.config.worker_replication_secret;
    if (secret && !replicationSecretMatches(req.headers.authorization, secret)) {
      throw Errors.forbidden('Invalid or missing replication secret');
    }
    const rt = s.workers;
    const name = req.params.name!;
    if (!rt || !rt.replication.has(name)) throw Errors.unrecognized(404);
    const txnId = req.params.txnId;
    return rt.replication.call(name, req.jsonOrEmpty(), txnId);
  };
  const opts = { auth: 'none' as const, bodyLimit: 64 * 1024 * 1024 };
  r.post('/_synapse/replication/:name/:txnId', handle, opts);
  r.put('/_synapse/replication/:name/:txnId', handle, opts);
  r.post('/_synapse/replication/:name', handle, opts);
}
