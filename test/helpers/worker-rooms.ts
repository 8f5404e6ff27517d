/**
 * Users and rooms placed on a chosen event persister, for the end-to-end
 * tests of the worker shape (a room's events go to the persister its id
 * hashes to).
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { startServer } from './homeserver.js';
import { roomShardFor } from '../../src/workers/role.js';
import { enc, RawClient } from './http.js';
import { EVENT_PERSISTERS, type WorkerDeployment } from './worker-deployment.js';

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Starts the worker deployment before the suite's tests and stops it after them; the getter gives it. */
export function useWorkerDeployment(): () => WorkerDeployment {
  let d: WorkerDeployment | undefined;
  beforeAll(async () => {
    d = (await startServer({ shape: 'workers' })) as WorkerDeployment;
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
  }, 60_000);
  return () => {
    if (!d) throw new Error('the worker deployment did not start');
    return d;
  };
}

export interface WorkerTestUser {
  userId: string;
  token: string;
  c: RawClient;
}

/** Registers a user and gives a client of it through the deployment's front door. */
export async function workerTestUser(d: WorkerDeployment): Promise<WorkerTestUser> {
  const r = await d.registerUser();
  return { userId: r.userId, token: r.accessToken, c: new RawClient(d.baseUrl, r.accessToken) };
}

/** A room (created by `owner`, joined by `others`) whose events go to `persister`. */
export async function roomOnPersister(persister: string, owner: WorkerTestUser, others: WorkerTestUser[]): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const r = await owner.c.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    if (roomShardFor(r.body.room_id, EVENT_PERSISTERS) !== persister) continue;
    for (const o of others) expect((await o.c.post(`/_matrix/client/v3/join/${enc(r.body.room_id)}`, {})).status).toBe(200);
    return r.body.room_id;
  }
  throw new Error(`no room landed on ${persister}`);
}
