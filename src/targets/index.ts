import type { Target } from '../core/delivery.js';
import { discardTarget } from './discard.js';
import { createFolderTarget, folderTarget } from './folder.js';
import type { ObjectTargetDeps } from './object-deps.js';
import { forwardTarget } from './forward.js';
import { groupTarget } from './group.js';
import { rejectTarget } from './reject.js';
import { spoolTarget } from './spool.js';
import { webhookTarget } from './webhook.js';
import { createWorkflowTarget, workflowTarget } from './workflow.js';
import { createWorkpackageTarget, workpackageTarget } from './workpackage.js';

/** Every kind of target, by kind (`deliver: [{ webhook: {...} }]` in a route names one). Add a target: one file, one line. */
export const targets = new Map<string, Target<any>>([
  [rejectTarget.kind, rejectTarget],
  [discardTarget.kind, discardTarget],
  [spoolTarget.kind, spoolTarget],
  [webhookTarget.kind, webhookTarget],
  [forwardTarget.kind, forwardTarget],
  [folderTarget.kind, folderTarget],
  [workflowTarget.kind, workflowTarget],
  [groupTarget.kind, groupTarget],
  [workpackageTarget.kind, workpackageTarget],
]);

/**
 * The registry a running Postroom delivers with: the same targets, with those that need the
 * object store (folder, workflow) bound to it. Pass it to createRouter (RCPT-time checks) and
 * to the delivery worker.
 */
export function bindTargets(deps: ObjectTargetDeps, base: ReadonlyMap<string, Target<any>> = targets): Map<string, Target<any>> {
  const bound = new Map(base);
  bound.set('folder', createFolderTarget(deps));
  bound.set('workflow', createWorkflowTarget(deps));
  bound.set('workpackage', createWorkpackageTarget(deps));
  return bound;
}
