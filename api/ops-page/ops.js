// The operations page's behaviour, no framework and no build step. The person signs in through
// the identity provider (authorization code with PKCE, as a public client without a secret), and
// every API call carries their access token. Everything shown comes from the API and is rendered
// as text nodes (never innerHTML), so a summary or an order id cannot inject markup. Actions call
// the API's existing endpoints (shared/operations.ts lists which); the API takes the acting person
// from the token, never from the request body.

/** Fields an action form can ask for; `name` is the key in the request body. */
const REASON = { name: 'reason', label: 'Reason', kind: 'textarea' };
const REFERENCE = { name: 'reference', label: 'Reference of the manual payment', kind: 'text' };
const RESOLUTION = {
  name: 'action',
  label: 'Resolution',
  kind: 'select',
  options: [
    ['complete-order', 'Complete the order (the money arrived)'],
    ['refund', 'Refund the customer'],
    ['accept', 'Accept as is'],
  ],
};
const NOTE = { name: 'note', label: 'Note', kind: 'textarea' };

const enc = encodeURIComponent;
const refund = (verb) => (run) => `/refunds/${enc(run.workflowId)}/${verb}`;

/**
 * Each OperatorActionName: its button, the fields it asks for, the endpoint it POSTs to and the
 * permission that endpoint requires (as api/operator-actions.ts ACTION_PERMISSIONS). The API
 * already lists only the actions the caller may take; the page checks again against GET /me, so
 * a button the person cannot use is never shown, whatever the list says.
 */
const ACTIONS = {
  approveRefund: { label: 'Approve', fields: [REASON], url: refund('approve'), permission: 'refunds:decide' },
  rejectRefund: { label: 'Reject', fields: [REASON], url: refund('reject'), permission: 'refunds:decide' },
  retryRefund: { label: 'Retry refund', fields: [REASON], url: refund('retry'), permission: 'refunds:intervene' },
  refundManually: { label: 'Refunded manually', fields: [REFERENCE, REASON], url: refund('refund-manually'), permission: 'refunds:intervene' },
  abandonRefund: { label: 'Abandon', fields: [REASON], url: refund('abandon'), permission: 'refunds:intervene' },
  resolveMismatch: {
    label: 'Resolve mismatch',
    fields: [RESOLUTION, NOTE],
    // workflow id `mismatch-<id>` (shared/reconciliation.ts mismatchWorkflowId)
    url: (run) => `/reconciliation/mismatches/${enc(run.workflowId.replace(/^mismatch-/, ''))}/resolve`,
    permission: 'mismatches:resolve',
  },
  cancelCheckout: { label: 'Cancel checkout', fields: [REASON], url: (run) => `/checkouts/${enc(run.workflowId)}/cancel`, permission: 'checkouts:cancel' },
  retryStep: { label: 'Retry step now', fields: [REASON], url: (run) => `/operations/runs/${enc(run.workflowId)}/retry-step`, permission: 'operations:retry-step' },
};

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** The Markdown the workflows write (`**STATUS** · ...`): bold spans as <strong>, the rest as text. */
function markdownLite(text) {
  return text.split(/\*\*(.+?)\*\*/g).map((part, i) => (i % 2 ? el('strong', {}, part) : part));
}

function formatAmount(minor, currency) {
  if (minor === null || minor === undefined) return null;
  if (!currency) return `${minor} (minor units)`;
  try {
    const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
    return format.format(minor / 10 ** digits);
  } catch {
    return `${minor} ${currency} (minor units)`; // a currency code Intl does not know
  }
}

/** The API's error shape `{ error: { code, message, field? } }` as one line. */
function describeError(status, body) {
  const error = body && body.error;
  if (!error) return `HTTP ${status}`;
  return `${error.code}: ${error.message}${error.field ? ` (field: ${error.field})` : ''}`;
}

/**
 * One call to the API under the signed-in person's token. A 401 means the token has expired or
 * was revoked: the person is sent back to sign in (the answer is still returned, unrendered).
 */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${accessToken()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    return { ok: false, status: 0, body: { error: { code: 'api_unreachable', message: `the API did not answer (${err.message})` } } };
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: { code: `http_${res.status}`, message: text.slice(0, 200) } };
  }
  if (res.status === 401) signInAgain(describeError(res.status, parsed));
  return { ok: res.ok, status: res.status, body: parsed };
}

// --- signing in: authorization code with PKCE (RFC 7636) against the identity provider ----------

// sessionStorage, not localStorage: the token lives only as long as this tab, and another tab
// (or a later visitor of a shared machine) does not inherit it.
const TOKEN_KEY = 'ops.accessToken';
/** What the redirect to the identity provider must find again on return: {verifier, state, returnTo}. */
const PENDING_KEY = 'ops.signIn';
/** A 401 right after signing in is the API refusing what the provider issued: no new round trip, which would loop. */
const JUST_SIGNED_IN_KEY = 'ops.justSignedIn';

/** GET /ops/config.json: which identity provider, which client, which audience. */
let settings = null;
/** GET /me: {subject, roles, permissions}. */
let me = null;

function accessToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

/** The page itself is the redirect URI (registered with the provider for the `ops-page` client). */
function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

/** Set once the page is on its way to the provider: several 401s at once must start one sign-in, not several. */
let leavingToSignIn = false;

/** To the provider's sign-in; it comes back to this page with `code` and `state`. */
async function startSignIn() {
  if (!settings || leavingToSignIn) return;
  if (!crypto.subtle) {
    sessionError('Signing in needs a secure context (HTTPS, or http://127.0.0.1 / localhost): this browser offers no SHA-256 here.');
    return;
  }
  leavingToSignIn = true;
  // 32 random bytes → 43 characters, the shortest verifier RFC 7636 allows, drawn from its alphabet
  const verifier = randomString(32);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = randomString(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo: location.search }));
  const url = new URL(settings.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: redirectUri(),
    scope: 'openid',
    // providers that issue tokens for several APIs (Auth0 and the like) pick the audience from this
    audience: settings.audience,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
  }).toString();
  location.assign(url.toString());
}

/**
 * Back from the provider (`?code=…&state=…`, or `?error=…`): the code is taken out of the address
 * at once (so it is neither bookmarked, shared nor sent again on reload), the state must be the
 * one this tab sent, and the code is exchanged, with the verifier, for the access token.
 */
async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, '', `${location.pathname}${pending?.returnTo ?? ''}`);
  if (!pending || params.get('state') !== pending.state) {
    sessionError('Sign-in refused: the answer from the identity provider does not belong to a sign-in started in this tab. Sign in again.');
    return;
  }
  if (params.has('error')) {
    sessionError(`The identity provider did not sign you in: ${params.get('error')}${params.get('error_description') ? ` (${params.get('error_description')})` : ''}.`);
    return;
  }
  let res;
  try {
    res = await fetch(settings.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        code_verifier: pending.verifier,
        client_id: settings.clientId,
        redirect_uri: redirectUri(),
      }),
    });
  } catch (err) {
    sessionError(`The identity provider's token endpoint did not answer (${err.message}).`);
    return;
  }
  const body = await res.json().catch(() => null);
  if (!res.ok || !body || typeof body.access_token !== 'string') {
    const reason = body?.error ? `${body.error}${body.error_description ? `: ${body.error_description}` : ''}` : `HTTP ${res.status}`;
    sessionError(`The identity provider refused to issue a token (${reason}).`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  sessionStorage.setItem(JUST_SIGNED_IN_KEY, '1');
}

/** Signed out (or never signed in): only the sign-in button shows. */
function showSignedOut(message) {
  me = null;
  $('signed-in').hidden = true;
  $('workspace').hidden = true;
  $('runs').replaceChildren();
  $('signed-out').hidden = false;
  $('sign-in-message').textContent = message || 'Sign in with your account to see the runs that wait for a person.';
}

function showSignedIn() {
  $('signed-out').hidden = true;
  $('who').textContent = me.subject;
  $('who-roles').textContent = me.roles.length ? me.roles.join(', ') : 'no role';
  $('who-roles').title = `May: ${me.permissions.join(', ') || 'nothing'}`;
  $('signed-in').hidden = false;
  $('workspace').hidden = false;
}

function sessionError(text) {
  $('session-error').textContent = text;
  $('session-error').hidden = !text;
}

/** The API no longer accepts the token: forget it and sign in again (once; see JUST_SIGNED_IN_KEY). */
function signInAgain(why) {
  const fresh = sessionStorage.getItem(JUST_SIGNED_IN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(JUST_SIGNED_IN_KEY);
  if (fresh) {
    showSignedOut();
    sessionError(`The API does not accept the token the identity provider just issued (${why}). Check AUTH_ISSUER and AUTH_AUDIENCE.`);
    return;
  }
  showSignedOut('Your session has ended. Taking you to sign in…');
  startSignIn();
}

/** Sign-out forgets the token in this tab; the provider's own session, if it keeps one, is its business. */
function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(JUST_SIGNED_IN_KEY);
  sessionError('');
  notice('');
  showSignedOut('Signed out. Sign in again to continue.');
}

function may(permission) {
  return Boolean(me && me.permissions.includes(permission));
}

// --- the list ---------------------------------------------------------------------------------

function currentFilter() {
  return new URLSearchParams(location.search).get('query') || '';
}

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function listError(text) {
  $('list-error').textContent = text;
  $('list-error').hidden = !text;
}

/** Only the newest list request may render: an older answer arriving late would show stale runs. */
let listRequests = 0;

async function refresh() {
  if (!me) return;
  const mine = ++listRequests;
  if (!may('operations:read')) {
    listError('');
    $('runs').replaceChildren();
    $('list-state').textContent = `Your roles (${me.roles.join(', ') || 'none'}) do not include reading the operations list.`;
    return;
  }
  const filter = currentFilter();
  $('filter').value = filter;
  $('filter').removeAttribute('aria-invalid');
  $('list-state').textContent = 'Loading…';
  const res = await api('GET', `/operations/runs${filter ? `?query=${enc(filter)}` : ''}`);
  if (mine !== listRequests || !me) return;
  if (!res.ok) {
    listError(`Cannot list runs: ${describeError(res.status, res.body)}`);
    if (res.body?.error?.field === 'query') $('filter').setAttribute('aria-invalid', 'true');
    $('list-state').textContent = 'The list could not be loaded.';
    return;
  }
  listError('');
  const runs = res.body.runs;
  for (const workflowId of openHistories.keys()) {
    if (!runs.some((run) => run.workflowId === workflowId)) openHistories.delete(workflowId);
  }
  $('runs').replaceChildren(...runs.map(runItem));
  $('list-state').textContent =
    runs.length === 0 ? 'Nothing needs attention.' : `${runs.length} run${runs.length === 1 ? '' : 's'}, as of ${new Date().toLocaleTimeString()}.`;
}

function runItem(run) {
  const facts = [
    ['Order', run.orderId],
    ['Amount', formatAmount(run.amountMinor, run.currency)],
    ['Status', run.flowStatus],
    ['Step', run.checkoutStep],
    ['Region', run.region],
    ['Started', new Date(run.startTime).toLocaleString()],
  ].filter(([, value]) => value !== null && value !== undefined);
  const actionArea = el('div', { class: 'action-area', 'data-testid': 'action-area' });
  const history = historyPanel(run);
  const buttons = run.actions.filter((name) => ACTIONS[name] && may(ACTIONS[name].permission)).map((name) => {
    const action = ACTIONS[name];
    const button = el('button', { type: 'button', 'data-testid': `action-${name}` }, action.label);
    button.addEventListener('click', () => openForm(run, name, actionArea));
    return button;
  });
  return el(
    'li',
    { class: 'run', 'data-testid': 'run', 'data-workflow-id': run.workflowId, 'aria-label': `${run.workflowType} ${run.workflowId}` },
    el('h2', {}, el('span', { class: 'type' }, run.workflowType), ' ', el('code', { 'data-testid': 'run-id' }, run.workflowId)),
    el('dl', {}, facts.map(([term, value]) => [el('dt', {}, term), el('dd', { 'data-testid': `run-${term.toLowerCase()}` }, value)])),
    run.summary ? el('p', { class: 'summary', 'data-testid': 'run-summary' }, markdownLite(run.summary)) : null,
    el(
      'p',
      { class: 'details', 'data-testid': 'run-details' },
      run.currentDetails ? markdownLite(run.currentDetails) : el('em', {}, 'current details unknown (no worker answered)'),
    ),
    el(
      'p',
      { class: 'links' },
      may('operations:history') ? historyToggle(run, history) : null,
      run.webUiUrl ? el('a', { href: run.webUiUrl, target: '_blank', rel: 'noopener', 'data-testid': 'run-web-ui' }, 'Open in Temporal UI') : null,
    ),
    history,
    el('div', { class: 'actions', 'data-testid': 'run-actions' }, buttons.length ? buttons : el('em', {}, 'no action applies now')),
    actionArea,
  );
}

// --- a run's history: its story from the event history (GET /operations/runs/:id/history) ------

/**
 * The history panels the operator opened, by workflow id. A list refresh renders every row anew;
 * an open panel is carried into the new row and reloaded there, so it never collapses under
 * the operator's eyes.
 */
const openHistories = new Map();

function historyPanel(run) {
  const open = may('operations:history') ? openHistories.get(run.workflowId) : undefined;
  if (open) {
    loadHistory(run, open);
    return open;
  }
  return el('div', { class: 'history', 'data-testid': 'run-history', 'aria-label': `History of ${run.workflowId}`, hidden: true });
}

function historyToggle(run, panel) {
  const button = el('button', { type: 'button', 'data-testid': 'history-toggle' });
  const show = (open) => {
    button.textContent = open ? 'Hide history' : 'History';
    button.setAttribute('aria-expanded', String(open));
    panel.hidden = !open;
  };
  show(openHistories.has(run.workflowId));
  button.addEventListener('click', () => {
    if (openHistories.has(run.workflowId)) {
      openHistories.delete(run.workflowId);
      panel.replaceChildren();
      show(false);
    } else {
      openHistories.set(run.workflowId, panel);
      show(true);
      loadHistory(run, panel);
    }
  });
  return button;
}

/** Only a panel's newest request may render, as for the list. */
const historyRequests = new WeakMap();

async function loadHistory(run, panel) {
  const mine = (historyRequests.get(panel) ?? 0) + 1;
  historyRequests.set(panel, mine);
  // a reload keeps the lines already shown until the new ones arrive
  if (!panel.querySelector('[data-testid="history-line"]')) {
    panel.replaceChildren(el('p', { class: 'hint', 'data-testid': 'history-state' }, 'Loading history…'));
  }
  const res = await api('GET', `/operations/runs/${enc(run.workflowId)}/history?runId=${enc(run.runId)}`);
  if (historyRequests.get(panel) !== mine || !openHistories.has(run.workflowId)) return;
  if (!res.ok) {
    panel.replaceChildren(
      el('p', { class: 'error', role: 'alert', 'data-testid': 'history-error' }, `Cannot load the history: ${describeError(res.status, res.body)}`),
    );
    return;
  }
  const { events, truncated } = res.body;
  // replaceChildren would show a null as the text "null": only what is there goes in
  const parts = [
    truncated ? el('p', { class: 'hint', 'data-testid': 'history-truncated' }, `Older events left out: the last ${events.length} are shown.`) : null,
    events.length
      ? el(
          'ol',
          { class: 'history-lines' },
          events.map((line) =>
            el(
              'li',
              { 'data-testid': 'history-line', 'data-kind': line.kind },
              el('time', { datetime: line.time }, new Date(line.time).toLocaleTimeString()),
              ' ',
              markdownLite(line.text),
            ),
          ),
        )
      : el('p', { class: 'hint', 'data-testid': 'history-state' }, 'No events yet.'),
  ];
  panel.replaceChildren(...parts.filter(Boolean));
}

// --- one action: an inline form, the POST, the API's answer -----------------------------------

function fieldControl(field, id) {
  if (field.kind === 'select') {
    return el('select', { id, name: field.name, required: true }, field.options.map(([value, label]) => el('option', { value }, label)));
  }
  if (field.kind === 'textarea') return el('textarea', { id, name: field.name, required: true, maxlength: 2000, rows: 2 });
  return el('input', { id, name: field.name, required: true, maxlength: 200 });
}

let formCounter = 0;

function openForm(run, name, area) {
  const action = ACTIONS[name];
  if (!action) return;
  const rows = action.fields.map((field) => {
    const id = `f${++formCounter}`;
    return el('p', {}, el('label', { for: id }, field.label), ' ', fieldControl(field, id));
  });
  const error = el('p', { class: 'error', role: 'alert', 'data-testid': 'action-error', hidden: true });
  const cancel = el('button', { type: 'button', 'data-testid': 'action-cancel' }, 'Cancel');
  const form = el(
    'form',
    { 'data-testid': 'action-form', 'aria-label': `${action.label} ${run.workflowId}` },
    el('h3', {}, `${action.label}: ${run.workflowId}`),
    rows,
    el('p', {}, el('button', { type: 'submit', 'data-testid': 'action-submit' }, `Send ${action.label.toLowerCase()}`), ' ', cancel),
    error,
  );
  cancel.addEventListener('click', () => area.replaceChildren());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    // no `by`: the API records the action under the token's subject
    const body = Object.fromEntries(new FormData(form));
    form.querySelectorAll('button').forEach((b) => (b.disabled = true));
    const res = await api('POST', action.url(run), body);
    form.querySelectorAll('button').forEach((b) => (b.disabled = false));
    if (res.status === 401) return; // on the way to sign-in
    if (!res.ok) {
      // the run's (or the API's) own reason, e.g. four_eyes: the form stays, so the person can read it and cancel
      showError(error, `Refused: ${describeError(res.status, res.body)}`);
      return;
    }
    area.replaceChildren();
    notice(`${action.label} accepted for ${run.workflowId} as ${me?.subject}. The list shows the run until it no longer needs attention.`);
    await refresh();
  });
  area.replaceChildren(form);
  form.querySelector('input, textarea, select')?.focus();
}

function showError(node, text) {
  node.textContent = text;
  node.hidden = false;
}

// --- the List Filter ----------------------------------------------------------------------------

function setFilter(query) {
  const url = new URL(location.href);
  if (query) url.searchParams.set('query', query);
  else url.searchParams.delete('query');
  history.replaceState(null, '', url);
  refresh();
}

$('filter-form').addEventListener('submit', (event) => {
  event.preventDefault();
  setFilter($('filter').value.trim());
});
$('filter-reset').addEventListener('click', () => setFilter(''));
$('refresh').addEventListener('click', () => refresh());

// Keep the list current, but never under an operator's hands: not while a form is open
// (an open history stays open: runItem carries it into the refreshed row).
const AUTO_REFRESH_MS = 15_000;
setInterval(() => {
  if (me && document.visibilityState === 'visible' && !document.querySelector('[data-testid="action-form"]')) refresh();
}, AUTO_REFRESH_MS);

$('sign-in').addEventListener('click', () => {
  sessionError('');
  startSignIn();
});
$('sign-out').addEventListener('click', signOut);
// Back here from the provider with the browser's Back button: this page may sign in again.
addEventListener('pageshow', (event) => {
  if (event.persisted) leavingToSignIn = false;
});

/** GET /ops/config.json (public): {issuer, authorizationEndpoint, tokenEndpoint, clientId, audience}. */
async function loadSettings() {
  try {
    const res = await fetch('/ops/config.json');
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.json();
  } catch (err) {
    sessionError(`Cannot read the page's sign-in settings from the API (GET /ops/config.json: ${err.message}).`);
    return null;
  }
}

/** Settings, the return from the provider if this is one, then who is signed in, then the list. */
async function start() {
  settings = await loadSettings();
  if (!settings) return;
  await finishSignIn();
  if (!accessToken()) {
    showSignedOut();
    return;
  }
  const res = await api('GET', '/me');
  if (res.status === 401) return; // signInAgain took over
  sessionStorage.removeItem(JUST_SIGNED_IN_KEY);
  if (!res.ok) {
    showSignedOut();
    sessionError(`Cannot tell who is signed in: ${describeError(res.status, res.body)}`);
    return;
  }
  me = { subject: res.body.subject, roles: res.body.roles ?? [], permissions: res.body.permissions ?? [] };
  showSignedIn();
  refresh();
}

start();
