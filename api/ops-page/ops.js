// The operations page's behaviour, no framework and no build step. Everything shown comes from
// the API and is rendered as text nodes (never innerHTML), so a summary or an order id cannot
// inject markup. Actions call the API's existing endpoints (shared/operations.ts lists which).

const OPERATOR_KEY = 'ops.operatorName';

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

/** Each OperatorActionName: its button, the fields it asks for, and the endpoint it POSTs to. */
const ACTIONS = {
  approveRefund: { label: 'Approve', fields: [REASON], url: refund('approve') },
  rejectRefund: { label: 'Reject', fields: [REASON], url: refund('reject') },
  retryRefund: { label: 'Retry refund', fields: [REASON], url: refund('retry') },
  refundManually: { label: 'Refunded manually', fields: [REFERENCE, REASON], url: refund('refund-manually') },
  abandonRefund: { label: 'Abandon', fields: [REASON], url: refund('abandon') },
  resolveMismatch: {
    label: 'Resolve mismatch',
    fields: [RESOLUTION, NOTE],
    // workflow id `mismatch-<id>` (shared/reconciliation.ts mismatchWorkflowId)
    url: (run) => `/reconciliation/mismatches/${enc(run.workflowId.replace(/^mismatch-/, ''))}/resolve`,
  },
  cancelCheckout: { label: 'Cancel checkout', fields: [REASON], url: (run) => `/checkouts/${enc(run.workflowId)}/cancel`, anonymous: true },
  retryStep: { label: 'Retry step now', fields: [REASON], url: (run) => `/operations/runs/${enc(run.workflowId)}/retry-step` },
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

async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
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
  return { ok: res.ok, status: res.status, body: parsed };
}

// --- the operator's name, asked once and kept in localStorage -------------------------------

function operatorName() {
  return localStorage.getItem(OPERATOR_KEY) || '';
}

function showOperator() {
  const name = operatorName();
  $('operator-form').hidden = Boolean(name);
  $('operator-current').hidden = !name;
  $('operator-label').textContent = name;
}

$('operator-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('operator-name').value.trim();
  if (!name) return;
  localStorage.setItem(OPERATOR_KEY, name);
  showOperator();
});

$('operator-change').addEventListener('click', () => {
  $('operator-name').value = operatorName();
  localStorage.removeItem(OPERATOR_KEY);
  showOperator();
  $('operator-name').focus();
});

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
  const mine = ++listRequests;
  const filter = currentFilter();
  $('filter').value = filter;
  $('filter').removeAttribute('aria-invalid');
  $('list-state').textContent = 'Loading…';
  const res = await api('GET', `/operations/runs${filter ? `?query=${enc(filter)}` : ''}`);
  if (mine !== listRequests) return;
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
  const buttons = run.actions.map((name) => {
    const action = ACTIONS[name];
    const button = el('button', { type: 'button', 'data-testid': `action-${name}` }, action ? action.label : name);
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
      historyToggle(run, history),
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
  const open = openHistories.get(run.workflowId);
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
  panel.replaceChildren(
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
  );
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
    const by = operatorName();
    if (!by && !action.anonymous) {
      showError(error, 'Enter your name first (top of the page): every decision is recorded with it.');
      $('operator-name').focus();
      return;
    }
    const body = Object.fromEntries(new FormData(form));
    if (!action.anonymous) body.by = by;
    form.querySelectorAll('button').forEach((b) => (b.disabled = true));
    const res = await api('POST', action.url(run), body);
    form.querySelectorAll('button').forEach((b) => (b.disabled = false));
    if (!res.ok) {
      showError(error, `Refused: ${describeError(res.status, res.body)}`);
      return;
    }
    area.replaceChildren();
    notice(`${action.label} sent for ${run.workflowId} (HTTP ${res.status}). The list shows the run until it no longer needs attention.`);
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
  if (document.visibilityState === 'visible' && !document.querySelector('[data-testid="action-form"]')) refresh();
}, AUTO_REFRESH_MS);

showOperator();
refresh();
