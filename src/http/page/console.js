// The operator console: overview, finding jobs, a job's detail, bulk actions and schedules. Every
// action is a GraphQL mutation any API client may send too; live parts (the overview, a job's
// detail) ride the page's one WebSocket (app.js passes its subscribe). uPlot draws the charts,
// served by this service as /assets/uplot.js. A workflow's graph is workflow-graph.js's.

import { startWorkflowView } from './workflow-graph.js';

const JOB_DETAIL = `id kind status input result progress attempt maxAttempts lastError priority owner lockedBy
  uniqueKey concurrencyKey idempotencyKey version runAt createdAt lastUpdated completedOn retrievedAt
  attempts { attempt error failedAt worker }`;
const FINAL = new Set(['RETRIEVED', 'FAILED', 'CANCELLED']);
const LABEL = { PENDING: 'Pending', WIP: 'Running', COMPLETED: 'Completed', RETRIEVED: 'Retrieved', FAILED: 'Failed', CANCELLED: 'Cancelled', WAITING: 'Waiting' };
const ACTIONS = {
  retry: { status: 'FAILED', mutation: 'retryJobs', verb: 'Retry', noun: 'failed' },
  cancel: { status: 'PENDING', mutation: 'cancelJobs', verb: 'Cancel', noun: 'pending' },
  retrieve: { status: 'COMPLETED', mutation: 'retrieveJobs', verb: 'Retrieve', noun: 'completed' },
};
const PAGE_SIZE = 25;
const SCHEDULES_EVERY_MS = 5000;

const $ = (id) => document.getElementById(id);

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A time in the viewer's zone, with the UTC time on hover (and in its datetime attribute). */
function time(iso) {
  const element = document.createElement('time');
  if (!iso) return '—';
  element.dateTime = iso;
  element.title = `${new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`;
  element.textContent = dateTimeFormat.format(new Date(iso));
  return element;
}

function cell(tag, content, className) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (content instanceof Node) element.append(content);
  else element.textContent = content ?? '';
  return element;
}

export function startConsole({ graphql, subscribe, el, json }) {
  let overviewStop;
  let detailStop;
  let charts;
  let filter = {};
  let endCursor = null;
  let schedulesReadAt = 0;
  let operator = true;
  const workflows = startWorkflowView({ graphql, subscribe, el, openJob: (id) => showJob(id) });

  // ---- overview ----------------------------------------------------------------------------------

  function watchOverview() {
    overviewStop?.();
    overviewStop = subscribe(
      {
        query: `subscription Overview { overviewUpdated { at queueCap sampled kinds { kind paused due delayed running completedLastHour failedLastHour
          minutes { minute completed failed p50 p99 } } } }`,
      },
      {
        next: (message) => {
          if (message.errors?.length) return refused(message.errors);
          if (message.data?.overviewUpdated) showOverview(message.data.overviewUpdated);
        },
        error: (errors) => refused(Array.isArray(errors) ? errors : []),
        complete: () => undefined,
      },
    );
  }

  function refused(errors) {
    if (errors.some((error) => error.extensions?.code === 'FORBIDDEN')) {
      operator = false;
      $('overview-note').textContent = 'The overview, pausing kinds and bulk actions need an operator key (ADMIN_API_KEYS).';
      for (const button of document.querySelectorAll('[data-bulk]')) button.hidden = true;
      $('f-owner').closest('.field').hidden = true;
    }
  }

  function showOverview(overview) {
    operator = true;
    const rows = overview.kinds.map((kind) => {
      const row = document.createElement('tr');
      row.dataset.kind = kind.kind;
      const button = el('button', { type: 'button' }, kind.paused ? 'Resume' : 'Pause', el('span', { className: 'visually-hidden', textContent: ` ${kind.kind}` }));
      button.addEventListener('click', () => pauseKind(kind.kind, !kind.paused, button));
      const state = cell('td', kind.paused ? 'Paused ' : 'Running ');
      state.append(button);
      row.append(
        cell('th', kind.kind),
        cell('td', String(kind.due), 'number'),
        cell('td', String(kind.delayed), 'number'),
        cell('td', String(kind.running), 'number'),
        cell('td', String(kind.completedLastHour), 'number'),
        cell('td', String(kind.failedLastHour), 'number'),
        state,
      );
      row.firstChild.scope = 'row';
      return row;
    });
    const body = $('kinds-table').tBodies[0];
    const focused = body.contains(document.activeElement) ? document.activeElement.closest('tr')?.dataset.kind : null;
    body.replaceChildren(...rows);
    if (focused) body.querySelector(`tr[data-kind="${CSS.escape(focused)}"] button`)?.focus();
    $('overview-note').textContent = overview.sampled
      ? 'The last hour held more jobs than one reading takes: the charts show the newest.'
      : `Each kind now, and the jobs created in the last hour. Updated ${dateTimeFormat.format(new Date(overview.at))}.`;
    drawCharts(overview);
    fillKinds(overview.kinds.map((kind) => kind.kind));
    if (Date.now() - schedulesReadAt > SCHEDULES_EVERY_MS) loadSchedules();
  }

  /** One chart per measure, one series per kind; minutes with nothing finished are gaps. */
  function drawCharts(overview) {
    if (typeof uPlot === 'undefined') return;
    const now = Math.floor(new Date(overview.at).getTime() / 60_000) * 60;
    const minutes = Array.from({ length: 60 }, (_, index) => now - (59 - index) * 60);
    const kinds = overview.kinds.filter((kind) => kind.minutes.length > 0);
    const valuesOf = (kind, pick, none) => {
      const byMinute = new Map(kind.minutes.map((minute) => [Date.parse(minute.minute) / 1000, minute]));
      return minutes.map((at) => (byMinute.has(at) ? pick(byMinute.get(at)) : none));
    };
    // A minute with nothing finished completed 0 jobs, and has no latency (a gap).
    const throughput = [minutes, ...kinds.map((kind) => valuesOf(kind, (minute) => minute.completed, 0))];
    const latency = [minutes, ...kinds.flatMap((kind) => [valuesOf(kind, (minute) => minute.p50, null), valuesOf(kind, (minute) => minute.p99, null)])];
    const key = kinds.map((kind) => kind.kind).join(',');
    if (!charts || charts.key !== key) {
      charts?.throughput.destroy();
      charts?.latency.destroy();
      const colours = ['#1d4ed8', '#b45309', '#15803d', '#9333ea', '#be123c', '#0f766e'];
      const width = () => Math.max(200, $('throughput-chart').parentElement.clientWidth || 300);
      const options = (series) => ({ width: width(), height: 180, series: [{}, ...series], axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor' }] });
      charts = {
        key,
        throughput: new uPlot(
          options(kinds.map((kind, index) => ({ label: kind.kind, stroke: colours[index % colours.length], width: 2 }))),
          throughput,
          $('throughput-chart'),
        ),
        latency: new uPlot(
          options(
            kinds.flatMap((kind, index) => [
              { label: `${kind.kind} p50`, stroke: colours[index % colours.length], width: 2, points: { show: true, size: 6 } },
              { label: `${kind.kind} p99`, stroke: colours[index % colours.length], width: 1, dash: [4, 4], points: { show: true, size: 4 } },
            ]),
          ),
          latency,
          $('latency-chart'),
        ),
      };
    } else {
      charts.throughput.setData(throughput);
      charts.latency.setData(latency);
    }
    const total = kinds.reduce((sum, kind) => sum + kind.completedLastHour, 0);
    $('throughput-chart').setAttribute('aria-label', `Completed per minute over the last hour: ${total} in all`);
    $('throughput-chart').dataset.total = String(total);
  }

  async function pauseKind(kind, pause, button) {
    const yes = await confirmAction(`${pause ? 'Pause' : 'Resume'} ${kind}? ${pause ? 'No worker starts its jobs until it is resumed.' : 'Workers start its jobs again.'}`, pause ? 'Pause' : 'Resume');
    if (!yes) return;
    button.disabled = true;
    try {
      await graphql(`mutation($kind: String!) { ${pause ? 'pauseKind' : 'resumeKind'}(kind: $kind) { name paused } }`, { kind });
    } catch (error) {
      $('overview-note').textContent = `Could not ${pause ? 'pause' : 'resume'} ${kind}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  function fillKinds(names) {
    const select = $('f-kind');
    const have = new Set([...select.options].map((option) => option.value));
    for (const name of names) if (!have.has(name)) select.append(el('option', { value: name, textContent: name }));
  }

  // ---- confirmation ------------------------------------------------------------------------------

  /** A modal question; resolves true on Confirm. The dialog keeps focus inside until it closes. */
  function confirmAction(text, yesLabel) {
    const dialog = $('confirm');
    const opener = document.activeElement;
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = yesLabel;
    return new Promise((resolve) => {
      const done = (answer) => {
        $('confirm-yes').removeEventListener('click', yes);
        $('confirm-no').removeEventListener('click', no);
        dialog.removeEventListener('cancel', no);
        dialog.close();
        opener?.focus?.();
        resolve(answer);
      };
      const yes = () => done(true);
      const no = (event) => {
        event?.preventDefault?.();
        done(false);
      };
      $('confirm-yes').addEventListener('click', yes);
      $('confirm-no').addEventListener('click', no);
      dialog.addEventListener('cancel', no);
      dialog.showModal();
      $('confirm-no').focus();
    });
  }

  // ---- finding jobs -------------------------------------------------------------------------------

  function readFilter() {
    const form = $('search-form');
    const value = (name) => form.elements[name].value.trim();
    const next = {};
    if (value('kind')) next.kind = value('kind');
    if (value('status')) next.status = value('status');
    if (value('owner')) next.owner = value('owner');
    if (value('id')) next.id = value('id');
    if (value('key')) next[value('keyType')] = value('key');
    if (value('createdAfter')) next.createdAfter = new Date(value('createdAfter')).toISOString();
    if (value('createdBefore')) next.createdBefore = new Date(value('createdBefore')).toISOString();
    if (value('path')) {
      let parsed;
      try {
        parsed = JSON.parse(value('value'));
      } catch {
        parsed = value('value');
      }
      next.match = { in: value('matchIn'), path: value('path'), value: parsed };
    }
    return next;
  }

  async function search(event, { more = false } = {}) {
    event?.preventDefault();
    if (!more) {
      filter = readFilter();
      endCursor = null;
    }
    $('search-error').textContent = '';
    try {
      const data = await graphql(
        `query Search($filter: JobFilter, $order: JobOrder, $first: Int, $after: String) {
          searchJobs(filter: $filter, order: $order, first: $first, after: $after) {
            nodes { id kind status createdAt attempt maxAttempts } pageInfo { hasNextPage endCursor } } }`,
        { filter, order: $('f-order').value, first: PAGE_SIZE, after: endCursor },
      );
      const { nodes, pageInfo } = data.searchJobs;
      const rows = nodes.map((job) => {
        const open = el('button', { type: 'button', className: 'job-link' }, el('code', { textContent: job.id.slice(0, 8) }), el('span', { className: 'visually-hidden', textContent: ` ${job.kind} job ${job.id}` }));
        open.addEventListener('click', () => showJob(job.id));
        const row = document.createElement('tr');
        row.dataset.id = job.id;
        const status = el('span', { className: 'chip', textContent: LABEL[job.status] });
        status.dataset.status = job.status;
        row.append(cell('td', open), cell('td', job.kind), cell('td', status), cell('td', time(job.createdAt)), cell('td', `${job.attempt} of ${job.maxAttempts}`));
        return row;
      });
      const body = $('results').tBodies[0];
      if (more) body.append(...rows);
      else body.replaceChildren(...rows);
      endCursor = pageInfo.endCursor;
      $('next-page').hidden = !pageInfo.hasNextPage;
      $('search-status').textContent = `${body.rows.length} job${body.rows.length === 1 ? '' : 's'} shown${pageInfo.hasNextPage ? '; more on the next page' : ''}.`;
    } catch (error) {
      if (!error.unauthenticated) $('search-error').textContent = `Could not find jobs: ${error.message}`;
    }
  }

  async function bulk(action) {
    const { status, mutation, verb, noun } = ACTIONS[action];
    const scoped = { ...readFilter(), status };
    $('search-error').textContent = '';
    try {
      const { jobCount } = await graphql('query Count($filter: JobFilter) { jobCount(filter: $filter) { count more cap } }', { filter: scoped });
      if (jobCount.count === 0) {
        $('search-status').textContent = `No ${noun} jobs match the filter.`;
        return;
      }
      const many = jobCount.more ? `more than ${jobCount.cap} ${noun} jobs (the oldest ${jobCount.cap} now)` : `${jobCount.count} ${noun} job${jobCount.count === 1 ? '' : 's'}`;
      if (!(await confirmAction(`${verb} ${many}?`, `${verb} ${jobCount.more ? jobCount.cap : jobCount.count}`))) return;
      const data = await graphql(`mutation Bulk($filter: JobFilter!) { ${mutation}(filter: $filter) { count more } }`, { filter: scoped });
      await search();
      $('search-status').textContent = `${verb}: ${data[mutation].count} job${data[mutation].count === 1 ? '' : 's'} changed.`;
    } catch (error) {
      if (!error.unauthenticated) $('search-error').textContent = `Could not ${verb.toLowerCase()} jobs: ${error.message}`;
    }
  }

  // ---- one job ------------------------------------------------------------------------------------

  function showJob(id) {
    detailStop?.();
    const section = $('job-detail');
    section.hidden = false;
    $('detail-heading').textContent = `Job ${id}`;
    $('detail-body').replaceChildren(el('p', { className: 'hint', textContent: 'Loading…' }));
    section.focus();
    workflows.showForJob(id);
    detailStop = subscribe(
      { query: `subscription Detail($id: ID!) { jobUpdated(id: $id) { ${JOB_DETAIL} } }`, variables: { id } },
      {
        next: (message) => {
          if (message.data?.jobUpdated) renderJob(message.data.jobUpdated);
          else if (message.errors?.length) $('detail-body').replaceChildren(el('p', { className: 'form-error', textContent: message.errors[0].message }));
        },
        error: () => undefined,
        complete: () => undefined,
      },
    );
  }

  function renderJob(job) {
    const term = (name, ...value) => el('div', {}, el('dt', { textContent: name }), el('dd', {}, ...value));
    const status = el('span', { className: 'chip', textContent: LABEL[job.status] });
    status.dataset.status = job.status;
    const actions = el('div', { className: 'actions' });
    const act = (label, mutation) => {
      const button = el('button', { type: 'button' }, label);
      button.addEventListener('click', async () => {
        if (!(await confirmAction(`${label} job ${job.id}?`, label))) return;
        try {
          await graphql(`mutation($id: ID!) { ${mutation} }`, { id: job.id });
          // A retried job runs again: watch it anew (its watch ended when it failed).
          if (label === 'Retry') showJob(job.id);
        } catch (error) {
          $('detail-body').append(el('p', { className: 'form-error', textContent: error.message }));
        }
      });
      actions.append(button);
    };
    if (job.status === 'FAILED') act('Retry', 'retryJob(id: $id) { id }');
    // cancelJob and retrieveJob act on the caller's own jobs; an operator's reach any owner's through
    // the bulk mutations, filtered to this one job.
    if (job.status === 'PENDING') act('Cancel', operator ? 'cancelJobs(filter: { id: $id }) { count }' : 'cancelJob(id: $id) { id }');
    if (job.status === 'COMPLETED') act('Retrieve', operator ? 'retrieveJobs(filter: { id: $id }) { count }' : 'retrieveJob(id: $id) { id }');
    $('detail-heading').textContent = `${job.kind} job ${job.id}`;
    $('detail-body').replaceChildren(
      el(
        'dl',
        {},
        term('Status', status),
        term('Attempts', `${job.attempt} of ${job.maxAttempts}`),
        term(job.status === 'WIP' ? 'Worker' : 'Last worker', job.lockedBy ?? '—'),
        term('Owner', el('code', { textContent: job.owner || '(none)' })),
        term('Priority', String(job.priority)),
        term('Created', time(job.createdAt)),
        term('Runs at', time(job.runAt)),
        term('Last change', time(job.lastUpdated)),
        term('Finished', time(job.completedOn)),
        term('Retrieved', time(job.retrievedAt)),
        job.uniqueKey ? term('Unique key', job.uniqueKey) : null,
        job.concurrencyKey ? term('Concurrency key', job.concurrencyKey) : null,
        job.idempotencyKey ? term('Idempotency key', job.idempotencyKey) : null,
      ),
      ...attemptHistory(job),
      el('h3', { textContent: 'Input' }),
      json(job.input),
      el('h3', { textContent: 'Result' }),
      json(job.result),
      el('h3', { textContent: 'Progress' }),
      json(job.progress),
      actions,
    );
    if (FINAL.has(job.status)) {
      detailStop?.();
      detailStop = undefined;
    }
  }

  /** Each failed attempt: its number, time (the viewer's zone, UTC on hover), worker and error. */
  function attemptHistory(job) {
    if (job.attempts.length === 0) {
      // A job that failed before its history was kept has only its last error.
      return job.lastError ? [el('p', { className: 'last-error', textContent: `Last error: ${job.lastError}` })] : [];
    }
    const entries = job.attempts.map((entry) =>
      el(
        'li',
        {},
        el('span', { className: 'attempt-head' }, `Attempt ${entry.attempt} · `, time(entry.failedAt), entry.worker ? ` · ${entry.worker}` : ''),
        el('pre', { className: 'last-error', textContent: entry.error }),
      ),
    );
    return [el('h3', { textContent: 'Failed attempts' }), el('ul', { id: 'attempt-history', className: 'attempt-history' }, ...entries)];
  }

  // ---- schedules ----------------------------------------------------------------------------------

  async function loadSchedules() {
    schedulesReadAt = Date.now();
    try {
      const { schedules } = await graphql('query Schedules { schedules { id kind name cron timeZone paused nextFireAt lastFireAt lastJobId } }');
      const lastJobs = await Promise.all(
        schedules.map((schedule) =>
          schedule.lastJobId ? graphql('query($id: ID!) { job(id: $id) { id status } }', { id: schedule.lastJobId }).then((data) => data.job, () => null) : null,
        ),
      );
      const rows = schedules.map((schedule, index) => {
        const row = document.createElement('tr');
        row.dataset.id = schedule.id;
        const name = schedule.name ? `${schedule.kind} (${schedule.name})` : schedule.kind;
        const last = lastJobs[index];
        let lastCell = '—';
        if (last) {
          lastCell = el('button', { type: 'button', className: 'job-link' }, `${LABEL[last.status]} `, el('code', { textContent: last.id.slice(0, 8) }));
          lastCell.addEventListener('click', () => showJob(last.id));
        }
        const buttons = el('div', { className: 'actions' });
        const act = (label, mutation, question) => {
          const button = el('button', { type: 'button' }, label, el('span', { className: 'visually-hidden', textContent: ` schedule ${name}` }));
          button.addEventListener('click', async () => {
            if (question && !(await confirmAction(question, label))) return;
            try {
              await graphql(`mutation($id: ID!) { ${mutation} }`, { id: schedule.id });
            } catch (error) {
              $('schedules-error').textContent = `Could not ${label.toLowerCase()} ${name}: ${error.message}`;
            }
            loadSchedules();
          });
          buttons.append(button);
        };
        act(schedule.paused ? 'Resume' : 'Pause', `${schedule.paused ? 'resumeSchedule' : 'pauseSchedule'}(id: $id) { id }`);
        act('Run now', 'runSchedule(id: $id) { id }', `Run ${name} now, once, outside its ticks?`);
        act('Delete', 'deleteSchedule(id: $id)', `Delete the schedule ${name}? The jobs it made stay.`);
        row.append(
          cell('th', name),
          cell('td', el('code', { textContent: `${schedule.cron} (${schedule.timeZone})` })),
          cell('td', schedule.nextFireAt ? time(schedule.nextFireAt) : '—'),
          cell('td', lastCell),
          cell('td', schedule.paused ? 'Paused' : 'Active'),
          cell('td', buttons),
        );
        row.firstChild.scope = 'row';
        return row;
      });
      const body = $('schedules-table').tBodies[0];
      const focusedId = body.contains(document.activeElement) ? document.activeElement.closest('tr')?.dataset.id : null;
      const focusedIndex = focusedId ? [...document.activeElement.closest('td').querySelectorAll('button')].indexOf(document.activeElement) : -1;
      body.replaceChildren(...rows);
      if (focusedId) body.querySelector(`tr[data-id="${focusedId}"]`)?.querySelectorAll('button')[focusedIndex]?.focus();
      $('schedules-empty').hidden = rows.length > 0;
    } catch (error) {
      if (!error.unauthenticated) $('schedules-error').textContent = `Could not load the schedules: ${error.message}`;
    }
  }

  $('search-form').addEventListener('submit', search);
  $('next-page').addEventListener('click', () => search(undefined, { more: true }));
  $('detail-close').addEventListener('click', () => {
    detailStop?.();
    detailStop = undefined;
    $('job-detail').hidden = true;
  });
  for (const button of document.querySelectorAll('[data-bulk]')) button.addEventListener('click', () => bulk(button.dataset.bulk));

  function restart() {
    operator = true;
    for (const button of document.querySelectorAll('[data-bulk]')) button.hidden = false;
    $('f-owner').closest('.field').hidden = false;
    watchOverview();
    loadSchedules();
    workflows.restart();
  }

  restart();
  return { restart, get operator() { return operator; } };
}
