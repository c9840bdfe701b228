// Starting a workflow by a type name the worker does not register fails only when a worker picks
// the task up; this catches a renamed export at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as workflows from '../workflows/index.ts';
import { WORKFLOW_TYPES } from '../shared/workflow-types.ts';

test('WORKFLOW_TYPES names exactly the workflows the worker registers', () => {
  assert.deepEqual(Object.values(WORKFLOW_TYPES).sort(), Object.keys(workflows).sort());
  for (const [key, type] of Object.entries(WORKFLOW_TYPES)) assert.equal(key, type);
});
