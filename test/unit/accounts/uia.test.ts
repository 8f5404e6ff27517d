/** The user-interactive auth state machine (sessions kept in a SQLite file). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsStore } from '../../../src/services/accounts/store.js';
import { UiaRequired, UiaService, UIA_SESSION_LIFETIME_MS } from '../../../src/services/accounts/uia.js';
import { Errors, MatrixError } from '../../../src/util/errors.js';
import { openEngine } from '../../storage/engines.js';

async function failure(p: Promise<unknown>): Promise<MatrixError> {
  try {
    await p;
  } catch (e) {
    return e as MatrixError;
  }
  throw new Error('expected a failure');
}

describe('UIA state machine', () => {
  let handle: Awaited<ReturnType<typeof openEngine>>;
  let now = 1_000_000_000;
  let uia: UiaService;
  let uia2: UiaService;
  const req = { uri: '/_matrix/client/v3/delete_devices', method: 'POST' };

  beforeAll(async () => {
    handle = await openEngine('sqlite');
    const store = new AccountsStore(handle.db);
    const make = () => {
      const s = new UiaService(store, () => now);
      s.registerStage('m.login.dummy', async () => true);
      s.registerStage('m.login.password', async (auth) => {
        if (auth.password !== 'right') throw Errors.forbidden('Invalid password');
        return '@alice:test';
      });
      s.registerStage('m.login.email.identity', async () => true);
      return s;
    };
    uia = make();
    // a second service on the same database: another process
    uia2 = make();
  });
  afterAll(async () => handle.cleanup());

  it('starts a session and answers 401 with flows, params and session (no errcode)', async () => {
    const e = await failure(uia.check({ ...req, auth: undefined, flows: [['m.login.password']], params: { x: 1 } }));
    expect(e).toBeInstanceOf(UiaRequired);
    expect(e.status).toBe(401);
    const body = e.toJSON();
    expect(body).toEqual({ flows: [{ stages: ['m.login.password'] }], params: { x: 1 }, session: expect.any(String) });
  });

  it('records a failed stage as 401 with errcode plus the flows, then completes', async () => {
    const flows = [['m.login.password']];
    const s = ((await failure(uia.check({ ...req, auth: undefined, flows }))).toJSON() as any).session;
    const wrong = await failure(uia.check({ ...req, auth: { type: 'm.login.password', password: 'bad', session: s }, flows }));
    expect(wrong.status).toBe(401);
    expect(wrong.toJSON()).toMatchObject({ errcode: 'M_FORBIDDEN', session: s, flows: [{ stages: ['m.login.password'] }] });
    // another process continues the same session
    const ok = await uia2.check({ ...req, auth: { type: 'm.login.password', password: 'right', session: s }, flows });
    expect(ok.sessionId).toBe(s);
    expect(ok.results).toEqual({ 'm.login.password': '@alice:test' });
  });

  it('needs every stage of a flow and reports the completed ones', async () => {
    const flows = [['m.login.dummy', 'm.login.email.identity'], ['m.login.password']];
    const first = await failure(uia.check({ ...req, auth: { type: 'm.login.dummy' }, flows }));
    const body = first.toJSON() as any;
    expect(body.completed).toEqual(['m.login.dummy']);
    expect(body.errcode).toBeUndefined();
    const done = await uia.check({ ...req, auth: { type: 'm.login.email.identity', session: body.session }, flows });
    expect(Object.keys(done.results).sort()).toEqual(['m.login.dummy', 'm.login.email.identity']);
  });

  it('refuses stages outside the flows, unknown or expired sessions, and a changed request', async () => {
    const flows = [['m.login.dummy']];
    expect((await failure(uia.check({ ...req, auth: { type: 'm.login.password' }, flows }))).errcode).toBe('M_UNRECOGNIZED');
    expect((await failure(uia.check({ ...req, auth: { type: 'm.login.dummy', session: 'nope' }, flows }))).status).toBe(400);
    expect((await failure(uia.check({ ...req, auth: 'x', flows }))).errcode).toBe('M_BAD_JSON');
    expect((await failure(uia.check({ ...req, auth: { type: 5 }, flows }))).errcode).toBe('M_BAD_JSON');
    const s = ((await failure(uia.check({ ...req, auth: undefined, flows }))).toJSON() as any).session;
    const changed = await failure(uia.check({ uri: '/_matrix/client/v3/account/password', method: 'POST', auth: { type: 'm.login.dummy', session: s }, flows }));
    expect([changed.status, changed.errcode]).toEqual([403, 'M_FORBIDDEN']);
    now += UIA_SESSION_LIFETIME_MS + 1;
    expect((await failure(uia.check({ ...req, auth: { type: 'm.login.dummy', session: s }, flows }))).status).toBe(400);
  });

  it('remembers the first body and forgets a finished session', async () => {
    const flows = [['m.login.dummy']];
    const s = ((await failure(uia.check({ ...req, auth: undefined, flows, clientdict: { username: 'bob' } }))).toJSON() as any).session;
    const done = await uia.check({ ...req, auth: { type: 'm.login.dummy', session: s }, flows });
    expect(done.clientdict).toEqual({ username: 'bob' });
    await uia.finish(s);
    expect((await failure(uia.check({ ...req, auth: { type: 'm.login.dummy', session: s }, flows }))).status).toBe(400);
  });
});
