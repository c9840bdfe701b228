// The README's permission table is the enforced one: it is printed from shared/permissions.ts.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { permissionTableMarkdown } from '../scripts/permission-table.ts';

test('the README shows the permission table the API enforces', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const match = /<!-- permission-table:start -->\n([\s\S]*?)\n<!-- permission-table:end -->/.exec(readme);
  assert.ok(match, 'README has the permission-table markers');
  assert.equal(match[1], permissionTableMarkdown());
});
