/**
 * User-interactive authentication (client-server API: "User-interactive
 * authentication API"). A session remembers the request it protects (URI,
 * method, the body first sent) and the stages completed so far; it lives in
 * the database so that any process can continue it.
 *
 * A request without `auth` gets 401 with `{flows, params, session}`; each
 * stage submitted is checked and recorded; once the completed stages cover
 * one flow the request proceeds. A failed stage answers 401 with the same body
 * plus `errcode`/`error`.
 */
import { Errors, MatrixError } from '../../util/errors.js';
import type { AccountsStore } from './store.js';
import { randomSessionId } from './tokens.js';

/** The 401 "more authentication needed" answer; its body is the UIA state, not a plain error. */
export class UiaRequired extends MatrixError {
  private readonly hasError: boolean;

  constructor(
    readonly body: Record<string, unknown>,
    errcode?: string,
    message?: string,
  ) {
    super(401, errcode ?? 'M_UNAUTHORIZED', message ?? 'Additional authentication required');
    this.hasError = errcode !== undefined;
  }

  override toJSON(): Record<string, unknown> {
    return this.hasError ? { errcode: this.errcode, error: this.message, ...this.body } : { ...this.body };
  }
}

export interface StageContext {
  /** The authenticated user, when the request has one: password stages must name them. */
  requesterUserId?: string;
  sessionId: string;
}

/** Checks one stage's auth dict; returns what to remember (e.g. the user id) or throws a MatrixError. */
export type StageChecker = (auth: Record<string, any>, ctx: StageContext) => Promise<unknown>;

export interface UiaRequest {
  /** The request body's `auth` (undefined if absent). */
  auth: unknown;
  flows: string[][];
  params?: Record<string, unknown>;
  uri: string;
  method: string;
  /** The request body without `auth`, remembered with the session. */
  clientdict?: Record<string, unknown>;
  requesterUserId?: string;
}

export interface UiaResult {
  sessionId: string;
  /** Result of each completed stage. */
  results: Record<string, unknown>;
  /** The remembered body merged with this request's. */
  clientdict: Record<string, unknown>;
}

/** Sessions expire after this long. */
export const UIA_SESSION_LIFETIME_MS = 24 * 3600_000;

export class UiaService {
  private readonly stages = new Map<string, StageChecker>();

  constructor(
    private readonly store: AccountsStore,
    private readonly clock: () => number = Date.now,
  ) {}

  registerStage(type: string, checker: StageChecker): void {
    this.stages.set(type, checker);
  }

  async check(req: UiaRequest): Promise<UiaResult> {
    const auth = req.auth;
    if (auth !== undefined && auth !== null && (typeof auth !== 'object' || Array.isArray(auth))) throw Errors.badJson("'auth' must be an object");
    const authDict = (auth ?? undefined) as Record<string, any> | undefined;
    const sessionGiven = authDict?.session;
    if (sessionGiven !== undefined && typeof sessionGiven !== 'string') throw Errors.badJson("'auth.session' must be a string");

    let sessionId: string;
    let clientdict: Record<string, unknown> = req.clientdict ?? {};
    if (sessionGiven !== undefined) {
      const s = await this.store.getUiaSession(sessionGiven);
      if (!s || s.creationTs < this.clock() - UIA_SESSION_LIFETIME_MS) throw Errors.unknown('Unknown session ID', 400);
      if (s.uri !== req.uri || s.method !== req.method) {
        throw Errors.forbidden('Requested operation has changed during the UI authentication session.');
      }
      sessionId = sessionGiven;
      clientdict = { ...s.clientdict, ...clientdict };
      if (Object.keys(req.clientdict ?? {}).length) await this.store.setUiaClientdict(sessionId, clientdict);
    } else {
      sessionId = randomSessionId();
      await this.store.createUiaSession({ sessionId, uri: req.uri, method: req.method, clientdict, serverdict: {} }, this.clock());
      if (Math.random() < 0.01) await this.store.deleteExpiredUiaSessions(this.clock() - UIA_SESSION_LIFETIME_MS);
    }

    const state = (completed: string[]) => ({
      flows: req.flows.map((stages) => ({ stages })),
      params: req.params ?? {},
      session: sessionId,
      ...(completed.length ? { completed } : {}),
    });

    const type = authDict?.type;
    if (type !== undefined) {
      if (typeof type !== 'string') throw Errors.badJson("'auth.type' must be a string");
      const checker = this.stages.get(type);
      if (!checker || !req.flows.some((f) => f.includes(type))) {
        throw new MatrixError(400, 'M_UNRECOGNIZED', `Unrecognised authentication type: ${type}`);
      }
      try {
        const result = await checker(authDict!, { requesterUserId: req.requesterUserId, sessionId });
        await this.store.markUiaStage(sessionId, type, result ?? true);
      } catch (e) {
        if (e instanceof MatrixError && (e.status === 401 || e.status === 403)) {
          const done = Object.keys(await this.store.getUiaStages(sessionId));
          throw new UiaRequired(state(done), e.errcode, e.message);
        }
        throw e;
      }
    }

    const results = await this.store.getUiaStages(sessionId);
    const completed = Object.keys(results);
    if (req.flows.some((flow) => flow.every((stage) => completed.includes(stage)))) {
      return { sessionId, results, clientdict };
    }
    throw new UiaRequired(state(completed));
  }

  /** Ends a session once the request it protected has succeeded. */
  async finish(sessionId: string): Promise<void> {
    await this.store.deleteUiaSession(sessionId);
  }
}
