// The jobs page. Plain browser JavaScript, no build step: queries and mutations go over HTTP
// POST to /graphql, and each job that can still change is watched with a `jobUpdated`
// subscription over one WebSocket (graphql-ws, served by this service as /assets/graphql-ws.js).
// One socket carries every subscription: SSE would hold one HTTP connection per job, and a
// browser allows only six per host over HTTP/1.1.
//
// `add` keeps its own two-number form; every other kind gets a form built from its input schema
// (schema-form.js) and goes in with `submitJob`.

import { startConsole } from './console.js';
import { buildSchemaForm } from './schema-form.js';

const JOB_FIELDS = `
  id kind status input num1 num2 result progress attempt maxAttempts lastError version
  runAt createdAt lastUpdated completedOn retrievedAt`;
// At most WS_MAX_SUBSCRIPTIONS (100 by default) operations may share one socket.
const LIST_SIZE = 50;
const KEY_STORAGE = 'job-service-api-key';
const FORBIDDEN = 4403;
const STATUSES = ['PENDING', 'WIP', 'COMPLETED', 'RETRIEVED', 'FAILED', 'CANCELLED'];
const FINAL = new Set(['RETRIEVED', 'FAILED', 'CANCELLED']);
const LABEL = {
  PENDING: 'Pending',
  WIP: 'Running',
  COMPLETED: 'Completed',
  RETRIEVED: 'Retrieved',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
  WAITING: 'Waiting',
};

const $ = (id) => document.getElementById(id);

class GraphQLRequestError extends Error {
  constructor(errors) {
    super(errors.map((error) => error.message).join('; '));
    this.errors = errors;
  }

  get unauthenticated() {
    return this.errors.some((error) => error.extensions?.code === 'UNAUTHENTICATED');
  }
}

// ---- the API key, when the service asks for one ---------------------------------------------------

let apiKey = sessionStorage.getItem(KEY_STORAGE) ?? '';

function authorization() {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

function askForKey() {
  const panel = $('key-panel');
  $('key-error').textContent = apiKey ? 'That key was not accepted.' : '';
  $('forget-key').hidden = true;
  if (!panel.hidden) return;
  panel.hidden = false;
  $('api-key').focus();
}

function keyAccepted() {
  $('key-panel').hidden = true;
  $('forget-key').hidden = !apiKey;
}

/** A new key (or none): every watch starts again on a new socket, and the list is read again. */
function useKey(key) {
  apiKey = key;
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  for (const id of [...shown.keys()]) forget(id);
  connectLive();
  load();
  operatorConsole?.restart();
}

async function graphql(query, variables) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...authorization(),
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`the service answered HTTP ${response.status}`);
  }
  if (body.errors?.length) {
    const error = new GraphQLRequestError(body.errors);
    if (error.unauthenticated) askForKey();
    throw error;
  }
  return body.data;
}

// ---- state ------------------------------------------------------------------------------------

/** id → { job, element, unsubscribe } for every job on the page. */
const shown = new Map();

let live;

function connectLive() {
  const old = live;
  live = undefined;
  old?.dispose();
  const client = graphqlWs.createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: () => authorization(),
    // A restart or a dropped connection must not end live updates; each subscription is sent
    // again on the new socket, and its first message is the job as it is then.
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries) + Math.random() * 500)),
    // Connected from the start, so the indicator in the header tells the truth even while no job
    // is being watched.
    lazy: false,
    keepAlive: 20_000,
  });
  client.on('connected', () => {
    if (client === live) setLive('connected', 'Live updates on');
  });
  client.on('closed', (event) => {
    if (client !== live) return;
    if (event?.code === FORBIDDEN) {
      setLive('closed', 'Live updates need an API key');
      askForKey();
    } else {
      setLive('closed', 'Live updates lost: reconnecting…');
    }
  });
  live = client;
}

function setLive(state, text) {
  const element = $('live');
  // Only real changes: the element is a live region, and each change is read out.
  if (element.dataset.state === state && element.textContent === text) return;
  element.dataset.state = state;
  element.textContent = text;
}

function watch(id) {
  const entry = shown.get(id);
  if (!entry || entry.unsubscribe || FINAL.has(entry.job.status)) return;
  // A watch that ends (the job is final, or its socket was replaced) frees its place, unless a
  // newer watch of the same job took it meanwhile.
  const release = () => {
    const current = shown.get(id);
    if (current?.unsubscribe === stop) current.unsubscribe = undefined;
  };
  const stop = live.subscribe(
    { query: `subscription Watch($id: ID!) { jobUpdated(id: $id) { ${JOB_FIELDS} } }`, variables: { id } },
    {
      next: (message) => {
        if (message.data?.jobUpdated) update(message.data.jobUpdated);
      },
      error: release,
      complete: release,
    },
  );
  entry.unsubscribe = stop;
}

/** Shows a job's state, unless the page already has a newer one (a late read). */
function update(job, { announce = true } = {}) {
  const entry = shown.get(job.id);
  if (!entry) return;
  if (job.version < entry.job.version) return;
  const before = entry.job.status;
  entry.job = job;
  render(entry);
  renderCounts();
  if (announce && before !== job.status) say(`${titleText(job)}: ${LABEL[job.status].toLowerCase()}${resultText(job)}`);
  if (FINAL.has(job.status) && entry.unsubscribe) {
    entry.unsubscribe();
    entry.unsubscribe = undefined;
  }
}

function add(job, { atTop }) {
  if (shown.has(job.id)) return update(job);
  const element = document.createElement('li');
  element.className = 'job';
  element.dataset.id = job.id;
  const entry = { job, element, unsubscribe: undefined };
  shown.set(job.id, entry);
  render(entry);
  const list = $('jobs');
  if (atTop) list.prepend(element);
  else list.append(element);
  watch(job.id);
}

function forget(id) {
  const entry = shown.get(id);
  if (!entry) return;
  entry.unsubscribe?.();
  entry.element.remove();
  shown.delete(id);
  renderCounts();
}

// ---- rendering ----------------------------------------------------------------------------------

function isAdd(job) {
  return job.kind === 'add' && job.num1 !== null && job.num1 !== undefined;
}

function sumText(job) {
  return `${job.num1} + ${job.num2}`;
}

/** How a job is named in its heading and in what is read out: `2 + 3`, or `greet job 0190…`. */
function titleText(job) {
  return isAdd(job) ? sumText(job) : `${job.kind} job ${job.id}`;
}

function resultText(job) {
  // Another kind's result may be long; it is on the page, not read out.
  if (job.result !== null && job.result !== undefined) return isAdd(job) ? `, result ${job.result}` : '';
  if (job.status === 'FAILED' && job.lastError) return `: ${job.lastError}`;
  return '';
}

/** A JSON value, pretty-printed, as text: the input and result of a job come from its customer. */
function json(value) {
  return el('pre', { className: 'json' }, el('code', { textContent: JSON.stringify(value, null, 2) ?? 'null' }));
}

const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function time(iso) {
  const element = document.createElement('time');
  element.dateTime = iso;
  const date = new Date(iso);
  const today = date.toDateString() === new Date().toDateString();
  element.textContent = (today ? timeFormat : dateTimeFormat).format(date);
  // The viewer's zone on the page; UTC on hover.
  element.title = date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return element;
}

function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  Object.assign(element, props);
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

function detail(term, ...value) {
  return el('div', {}, el('dt', { textContent: term }), el('dd', {}, ...value));
}

function idDetail(id) {
  const item = detail('ID', el('code', { textContent: id }));
  item.className = 'id';
  return item;
}

function render({ job, element }) {
  const titleId = `job-${job.id}`;
  const sum = isAdd(job);
  const title = sum ? el('h3', { id: titleId }, sumText(job)) : el('h3', { id: titleId }, el('span', { className: 'kind', textContent: job.kind }));
  if (sum && job.result !== null) title.append(' = ', el('span', { className: 'result', textContent: job.result }));

  const chip = el('span', { className: 'chip', textContent: LABEL[job.status] });
  chip.dataset.status = job.status;

  const details = el(
    'dl',
    {},
    detail('Kind', el('code', { textContent: job.kind })),
    detail('Attempts', `${job.attempt} of ${job.maxAttempts}`),
    detail('Created', time(job.createdAt)),
    new Date(job.runAt) > new Date(job.createdAt) && job.status === 'PENDING' ? detail('Runs at', time(job.runAt)) : null,
    detail('Last change', time(job.lastUpdated)),
    job.completedOn ? detail(job.status === 'CANCELLED' ? 'Cancelled' : 'Finished', time(job.completedOn)) : null,
    job.retrievedAt ? detail('Retrieved', time(job.retrievedAt)) : null,
    idDetail(job.id),
  );
  // An add job's input and result are its heading; any other kind's are shown as JSON.
  const data = sum
    ? null
    : el(
        'dl',
        { className: 'data' },
        el('div', { className: 'input' }, el('dt', { textContent: 'Input' }), el('dd', {}, json(job.input))),
        job.result !== null && job.result !== undefined
          ? el('div', { className: 'result' }, el('dt', { textContent: 'Result' }), el('dd', {}, json(job.result)))
          : null,
      );

  const error = job.lastError ? el('p', { className: 'last-error', textContent: `Last error: ${job.lastError}` }) : null;
  const bar = progressBar(job);

  let actions = null;
  if (job.status === 'COMPLETED') {
    const button = el('button', { type: 'button', className: 'retrieve' }, 'Retrieve', el('span', {
      className: 'visually-hidden',
      textContent: ` the result of ${titleText(job)}`,
    }));
    button.addEventListener('click', () => retrieve(job.id, button));
    actions = el('div', { className: 'actions' }, button);
  }

  // Keep focus where it was when the job re-renders under it (the retrieve button goes away).
  const hadFocus = element.contains(document.activeElement);
  element.replaceChildren(title, chip, ...(bar ? [bar] : []), details, ...(data ? [data] : []), ...(error ? [error] : []), ...(actions ? [actions] : []));
  element.setAttribute('aria-labelledby', titleId);
  if (hadFocus && !element.contains(document.activeElement)) {
    element.tabIndex = -1;
    element.focus();
  }
}

/** A percent the bar can show: a number from 0 to 100, or undefined (the bar is indeterminate). */
function percentOf(progress) {
  const { percent } = progress;
  return typeof percent === 'number' && Number.isFinite(percent) && percent >= 0 && percent <= 100 ? percent : undefined;
}

/**
 * A running job's last progress report, as a bar and its message. Only while the job runs: once
 * it is over, its result says more, and a retry waiting to run has not got that far yet. A kind
 * without a progress schema may report any JSON object, so nothing in it is taken on trust.
 */
function progressBar(job) {
  const { progress } = job;
  if (job.status !== 'WIP' || progress === null || typeof progress !== 'object' || Array.isArray(progress)) return null;
  const percent = percentOf(progress);
  const message = typeof progress.message === 'string' && progress.message !== '' ? progress.message : null;
  const barId = `progress-${job.id}`;
  const messageId = `progress-message-${job.id}`;
  const bar = el('progress', { id: barId, max: 100 });
  // Without a value the element is indeterminate, which is what a report without a percent means.
  if (percent !== undefined) {
    bar.value = percent;
    bar.textContent = `${Math.round(percent)} %`;
  }
  if (message) bar.setAttribute('aria-describedby', messageId);
  return el(
    'div',
    { className: 'progress' },
    el('label', { htmlFor: barId }, 'Progress', el('span', { className: 'visually-hidden', textContent: ` of ${titleText(job)}` })),
    bar,
    el('span', { className: 'percent', textContent: percent === undefined ? '' : `${Math.round(percent)} %` }),
    message ? el('p', { id: messageId, className: 'progress-message', textContent: message }) : null,
  );
}

function renderCounts() {
  const counts = Object.fromEntries(STATUSES.map((status) => [status, 0]));
  for (const { job } of shown.values()) counts[job.status] += 1;
  $('counts').replaceChildren(
    ...STATUSES.map((status) => {
      const chip = el('span', { className: 'chip', textContent: LABEL[status] });
      chip.dataset.status = status;
      const item = el('li', {}, chip, el('strong', { textContent: String(counts[status]) }));
      item.dataset.status = status;
      return item;
    }),
  );
  $('jobs-empty').hidden = shown.size > 0;
}

function say(text) {
  $('announcer').textContent = text;
}

// ---- actions ----------------------------------------------------------------------------------

async function load() {
  const button = $('refresh');
  button.disabled = true;
  $('jobs-error').textContent = '';
  try {
    const data = await graphql(`query Jobs($first: Int) { jobs(first: $first) { nodes { ${JOB_FIELDS} } } }`, {
      first: LIST_SIZE,
    });
    const jobs = data.jobs.nodes;
    const ids = new Set(jobs.map((job) => job.id));
    for (const id of [...shown.keys()]) if (!ids.has(id)) forget(id);
    // Newest first: jobs the page already shows keep their element, new ones fall into place.
    const list = $('jobs');
    for (const job of jobs) {
      if (shown.has(job.id)) {
        update(job, { announce: false });
        watch(job.id);
      } else {
        add(job, { atTop: false });
      }
      list.append(shown.get(job.id).element);
    }
    renderCounts();
    keyAccepted();
    if (!kinds) loadKinds();
  } catch (error) {
    if (!error.unauthenticated) $('jobs-error').textContent = `Could not load the jobs: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

function setFieldError(name, message) {
  const input = $(name);
  const error = $(`${name}-error`);
  input.setAttribute('aria-invalid', message ? 'true' : 'false');
  error.textContent = message ?? '';
  error.hidden = !message;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)$/;

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const values = { num1: $('num1').value.trim(), num2: $('num2').value.trim() };
  $('form-error').textContent = '';
  let firstBad = null;
  for (const name of ['num1', 'num2']) {
    const bad = values[name] === '' ? 'Enter a number.' : DECIMAL.test(values[name]) ? null : 'Use a plain decimal like 12 or -0.5.';
    setFieldError(name, bad);
    if (bad && !firstBad) firstBad = name;
  }
  if (firstBad) {
    $(firstBad).focus();
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const data = await graphql(
      `mutation Add($input: AddJobInput!) { addJob(input: $input) { job { ${JOB_FIELDS} } } }`,
      { input: values },
    );
    const job = data.addJob.job;
    add(job, { atTop: true });
    renderCounts();
    say(`Added ${titleText(job)}: ${LABEL[job.status].toLowerCase()}`);
  } catch (error) {
    const field = error.errors?.[0]?.extensions?.field;
    if (error.unauthenticated) {
      // The key panel says what to do.
    } else if (field === 'num1' || field === 'num2') {
      setFieldError(field, error.errors[0].message);
      $(field).focus();
    } else {
      $('form-error').textContent = `Could not add the job: ${error.message}`;
    }
  } finally {
    button.disabled = false;
  }
}

// ---- other kinds ---------------------------------------------------------------------------------

/** name → { name, description, inputSchema }, once the service has said which kinds it runs. */
let kinds;
/** The form of the kind picked, other than add. */
let kindForm;

async function loadKinds() {
  try {
    const data = await graphql('query Kinds { kinds { name description inputSchema } }');
    kinds = new Map(data.kinds.map((kind) => [kind.name, kind]));
  } catch {
    // The add form works without the list; the next load tries again.
    return;
  }
  const select = $('kind');
  const picked = select.value;
  select.replaceChildren(...[...kinds.keys()].map((name) => el('option', { value: name, textContent: name })));
  select.value = kinds.has(picked) ? picked : kinds.has('add') ? 'add' : select.options[0]?.value ?? '';
  showKind();
}

function showKind() {
  const name = $('kind').value;
  const kind = kinds?.get(name);
  $('kind-description').textContent = kind?.description ?? '';
  $('kind-form-error').textContent = '';
  const isAddKind = name === 'add';
  $('add-panel').hidden = !isAddKind;
  $('kind-panel').hidden = isAddKind;
  $('add-heading').textContent = isAddKind ? 'Add two numbers' : `New ${name} job`;
  if (isAddKind || !kind) {
    kindForm = undefined;
    $('kind-fields').replaceChildren();
    return;
  }
  kindForm = { name, form: buildSchemaForm(kind.inputSchema) };
  $('kind-fields').replaceChildren(kindForm.form.element);
}

/** `input.lines.0.cents` → `lines.0.cents`, the path within the form; null for a field outside it. */
function inputPath(field) {
  if (field === 'input') return '';
  return typeof field === 'string' && field.startsWith('input.') ? field.slice('input.'.length) : null;
}

async function submitKind(event) {
  event.preventDefault();
  if (!kindForm) return;
  const { name, form } = kindForm;
  $('kind-form-error').textContent = '';
  const read = form.read();
  if (!read.ok) return;
  const button = event.currentTarget.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const data = await graphql(
      `mutation Submit($input: SubmitJobInput!) { submitJob(input: $input) { job { ${JOB_FIELDS} } } }`,
      { input: { kind: name, input: read.value } },
    );
    const job = data.submitJob.job;
    add(job, { atTop: true });
    renderCounts();
    say(`Added ${titleText(job)}: ${LABEL[job.status].toLowerCase()}`);
  } catch (error) {
    const first = error.errors?.[0];
    const field = first?.extensions?.field;
    const path = inputPath(field);
    // The service starts its message with the field's path; next to the field, that is said already.
    const message = typeof field === 'string' && first.message.startsWith(`${field} `) ? first.message.slice(field.length + 1) : first?.message;
    if (error.unauthenticated) {
      // The key panel says what to do.
    } else if (path !== null && kindForm?.form === form && form.showError(path, message)) {
      // Shown, and focused, at its field.
    } else {
      $('kind-form-error').textContent = `Could not submit the job: ${error.message}`;
    }
  } finally {
    button.disabled = false;
  }
}

async function retrieve(id, button) {
  button.disabled = true;
  try {
    const data = await graphql(`mutation Retrieve($id: ID!) { retrieveJob(id: $id) { ${JOB_FIELDS} } }`, { id });
    update(data.retrieveJob);
  } catch (error) {
    button.disabled = false;
    if (!error.unauthenticated) say(`Could not retrieve the result: ${error.message}`);
  }
}

function submitKey(event) {
  event.preventDefault();
  const key = $('api-key').value.trim();
  if (!key) {
    $('key-error').textContent = 'Enter your API key.';
    $('api-key').focus();
    return;
  }
  $('api-key').value = '';
  useKey(key);
}

$('add-form').addEventListener('submit', submit);
$('kind').addEventListener('change', showKind);
$('kind-form').addEventListener('submit', submitKind);
$('refresh').addEventListener('click', load);
$('key-form').addEventListener('submit', submitKey);
$('forget-key').addEventListener('click', () => useKey(''));
connectLive();
renderCounts();
load();
/** The operator console (console.js): its live parts share this page's one WebSocket. */
const operatorConsole = startConsole({ graphql, subscribe: (payload, sink) => live.subscribe(payload, sink), el, json });
