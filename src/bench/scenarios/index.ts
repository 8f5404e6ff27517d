import type { ScenarioName } from '../args.js';
import type { Scenario } from '../context.js';
import { deliveryScenario } from './delivery.js';
import { emptySyncScenario } from './empty-sync.js';
import { fanoutScenario } from './fanout.js';
import { historyScenario } from './history.js';
import { initialSyncScenario } from './initial-sync.js';
import { joinsScenario } from './joins.js';
import { keysClaimScenario, keysQueryScenario } from './keys.js';
import { versionsScenario, whoamiScenario } from './requests.js';
import { sendScenario } from './send.js';

export const SCENARIO_IMPLS: Record<ScenarioName, Scenario<any>> = {
  send: sendScenario,
  delivery: deliveryScenario,
  fanout: fanoutScenario,
  'initial-sync': initialSyncScenario,
  'empty-sync': emptySyncScenario,
  history: historyScenario,
  joins: joinsScenario,
  versions: versionsScenario,
  whoami: whoamiScenario,
  'keys-query': keysQueryScenario,
  'keys-claim': keysClaimScenario,
};
