/** The /pushrules API (scope `global` only). */
import type { Services } from '../../app/services.js';
import { isRuleKind, validateActions, validateConditions, type PushRule, type RuleKind } from '../../matrix/push-rules.js';
import { isValidRoomId } from '../../matrix/identifiers.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type MatrixRequest, type Router } from '../types.js';
import { live, authed } from './live-common.js';

function kindOf(req: MatrixRequest): RuleKind {
  const kind = req.params.kind!;
  if (!isRuleKind(kind)) throw Errors.invalidParam(`Unknown push rule kind: ${kind}`);
  return kind;
}

function ruleIdOf(req: MatrixRequest): string {
  const ruleId = req.params.ruleId!;
  if (!ruleId) throw Errors.invalidParam('Missing rule id');
  return ruleId;
}

/** Validates a PUT body for a user-defined rule of `kind`. */
function parseRule(kind: RuleKind, ruleId: string, body: Record<string, any>): Omit<PushRule, 'default' | 'enabled'> {
  if (ruleId.startsWith('.')) throw Errors.invalidParam('Rule ids starting with "." are reserved for server-default rules');
  if (/[/\\]/.test(ruleId)) throw Errors.invalidParam('Rule ids cannot contain slashes or backslashes');
  if (body.actions === undefined) throw Errors.missingParam('actions');
  const actionsError = validateActions(body.actions);
  if (actionsError) throw Errors.badJson(actionsError);
  const rule: Omit<PushRule, 'default' | 'enabled'> = { rule_id: ruleId, actions: body.actions };
  switch (kind) {
    case 'override':
    case 'underride': {
      const conditions = body.conditions ?? [];
      const err = validateConditions(conditions);
      if (err) throw Errors.badJson(err);
      rule.conditions = conditions;
      break;
    }
    case 'content':
      if (body.pattern === undefined) throw Errors.missingParam('pattern');
      if (typeof body.pattern !== 'string') throw Errors.badJson("'pattern' must be a string");
      rule.pattern = body.pattern;
      break;
    case 'room':
      if (!isValidRoomId(ruleId)) throw Errors.invalidParam('The rule id of a room rule must be a room ID');
      break;
    case 'sender':
      if (!ruleId.startsWith('@') || !ruleId.includes(':')) throw Errors.invalidParam('The rule id of a sender rule must be a user ID');
      break;
  }
  return rule;
}

export function pushRulesRoutes(router: Router, s: Services): void {
  const r = authed(router);
  r.get(clientPaths('/pushrules/'), async (req) => ({ global: await live(s).pushRules.getRuleset(req.requester.userId) }));
  r.get(clientPaths('/pushrules/global/'), async (req) => live(s).pushRules.getRuleset(req.requester.userId));

  const rulePath = clientPaths('/pushrules/global/:kind/:ruleId');
  r.get(rulePath, async (req) => live(s).pushRules.getRule(req.requester.userId, kindOf(req), ruleIdOf(req)));

  r.put(rulePath, async (req) => {
    const kind = kindOf(req);
    const ruleId = ruleIdOf(req);
    const rule = parseRule(kind, ruleId, req.json());
    const before = req.query.before || undefined;
    const after = req.query.after || undefined;
    await live(s).pushRules.putRule(req.requester.userId, kind, rule, before, after);
    return {};
  });

  r.delete(rulePath, async (req) => {
    await live(s).pushRules.deleteRule(req.requester.userId, kindOf(req), ruleIdOf(req));
    return {};
  });

  r.get(clientPaths('/pushrules/global/:kind/:ruleId/enabled'), async (req) => {
    const rule = await live(s).pushRules.getRule(req.requester.userId, kindOf(req), ruleIdOf(req));
    return { enabled: rule.enabled };
  });

  r.put(clientPaths('/pushrules/global/:kind/:ruleId/enabled'), async (req) => {
    const kind = kindOf(req);
    const ruleId = ruleIdOf(req);
    const body = req.json();
    if (body.enabled === undefined) throw Errors.missingParam('enabled');
    if (typeof body.enabled !== 'boolean') throw Errors.badJson("'enabled' must be a boolean");
    await live(s).pushRules.setEnabled(req.requester.userId, kind, ruleId, body.enabled);
    return {};
  });

  r.get(clientPaths('/pushrules/global/:kind/:ruleId/actions'), async (req) => {
    const rule = await live(s).pushRules.getRule(req.requester.userId, kindOf(req), ruleIdOf(req));
    return { actions: rule.actions };
  });

  r.put(clientPaths('/pushrules/global/:kind/:ruleId/actions'), async (req) => {
    const kind = kindOf(req);
    const ruleId = ruleIdOf(req);
    const body = req.json();
    if (body.actions === undefined) throw Errors.missingParam('actions');
    const err = validateActions(body.actions);
    if (err) throw Errors.badJson(err);
    await live(s).pushRules.setActions(req.requester.userId, kind, ruleId, body.actions);
    return {};
  });
}
