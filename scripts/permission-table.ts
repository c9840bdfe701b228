// `npm run -s permissions`: prints the README's permission table from shared/permissions.ts, so
// the documented table and the enforced one cannot drift (tests/readme.test.ts compares them).
import { pathToFileURL } from 'node:url';
import { PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Permission } from '../shared/permissions.ts';

export function permissionTableMarkdown(): string {
  const header = `| permission | what it allows | ${ROLES.join(' | ')} |`;
  const rule = `| --- | --- | ${ROLES.map(() => ':---:').join(' | ')} |`;
  const rows = (Object.keys(PERMISSIONS) as Permission[]).map((permission) => {
    const marks = ROLES.map((role) => (ROLE_PERMISSIONS[role].includes(permission) ? '✓' : ''));
    return `| \`${permission}\` | ${PERMISSIONS[permission]} | ${marks.join(' | ')} |`;
  });
  return [header, rule, ...rows].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(permissionTableMarkdown());
}
