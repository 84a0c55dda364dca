// The console's workflow view: a workflow's steps drawn as a graph (inline SVG, parents above
// their children), each step's state kept live by the workflowUpdated subscription on the page's
// one WebSocket. Reached by #workflow/<id>, by the form in its section, and from the job view of
// a job that is a step. A step's node opens its job (console.js's job view).
//
// The layout is by layers (Sugiyama's): a step's layer is the longest path to it from a step with
// no parents, and a barycentre sweep orders each layer to cut crossings. An edge that skips layers
// takes a narrow lane of its own in each layer it passes, ordered in the sweep like a step, so it
// runs beside that layer's steps, never behind one, and it is plain which step it comes from and
// goes to. The layers and the sweep are linear in the steps and edges (a sort per layer); the
// lanes add the layers the edges skip, up to GRAPH_MAX_LANES of them. Beyond GRAPH_MAX_STEPS a
// drawing would be too wide to read, and beyond GRAPH_MAX_LANES its arrows could not be told
// apart: the steps are listed by layer instead, without lanes, so 1,000 steps lay out in a few
// milliseconds whatever their edges. The graph's shape never changes
// after submission, so a change redraws nothing: it sets each node's state.

const GRAPH_MAX_STEPS = 200;
/**
 * A drawing's lanes, at most: 200 steps in a chain that each also wait for its first step need
 * 19,701, laid out in about a fifth of a second. A graph that needs more (200 steps that each
 * wait for all before them need 1.3 million, many seconds' work) could not be read for its edges
 * anyway, and is listed by layer, as a graph of too many steps is.
 */
const GRAPH_MAX_LANES = 20_000;
/** Sweeps of the barycentre ordering, each down then up; more rarely removes another crossing. */
const SWEEPS = 4;
/** `lane` is a long edge's width where it passes a layer: room for its line, not for a step. */
const NODE = { width: 168, height: 66, gapX: 20, gapY: 40, pad: 8, lane: 20 };
const NAME_CHARS = 20;
const SVG = 'http://www.w3.org/2000/svg';
/** The state in words and a glyph, so that it is never told by colour alone. */
const STATE = {
  WAITING: { label: 'Waiting', glyph: '◇' },
  PENDING: { label: 'Pending', glyph: '○' },
  WIP: { label: 'Running', glyph: '▶' },
  COMPLETED: { label: 'Completed', glyph: '✓' },
  RETRIEVED: { label: 'Retrieved', glyph: '✓' },
  FAILED: { label: 'Failed', glyph: '✕' },
  CANCELLED: { label: 'Cancelled', glyph: '⊘' },
};
const WORKFLOW_FIELDS = 'id finished steps { name jobId kind status dependsOn }';

const $ = (id) => document.getElementById(id);
const stateOf = (status) => STATE[status] ?? { label: status, glyph: '?' };
const shorten = (text, length) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children.filter(Boolean));
  return element;
}

/**
 * Layers and their order for `steps` ({ name, dependsOn }): `layers[k]` holds the indexes of
 * layer k's steps, left to right. A name in dependsOn that is no step (a job outside the
 * workflow, or a pruned step) draws no edge.
 *
 * An edge that spans more than one layer gets a virtual point (a lane) in each layer between its
 * ends, numbered from steps.length up: `order[k]` is layer k left to right with those points among
 * the steps, and each of `edges` ({ parent, child, via }) lists its points top to bottom (none for
 * an edge to the next layer). The points are ordered with the steps, so a long edge keeps a lane
 * of its own beside the steps it passes instead of running behind them, and the sweep keeps its
 * crossings down as it does a step's. They cost an edge's span each, so a graph that would need
 * more than `maxLanes` gets none, and `laned` is false: a list of steps draws no edge and asks
 * for none.
 */
export function layoutWorkflow(steps, { maxLanes = Infinity } = {}) {
  const byName = new Map(steps.map((step, index) => [step.name, index]));
  const parents = steps.map((step) => step.dependsOn.map((name) => byName.get(name)).filter((index) => index !== undefined));
  const children = steps.map(() => []);
  for (const [child, list] of parents.entries()) for (const parent of list) children[parent].push(child);
  // Kahn's order: a step is placed once all its parents are, one layer below the lowest of them.
  const left = parents.map((list) => list.length);
  const depth = steps.map(() => 0);
  const queue = left.flatMap((count, index) => (count === 0 ? [index] : []));
  for (let head = 0; head < queue.length; head += 1) {
    for (const child of children[queue[head]]) {
      depth[child] = Math.max(depth[child], depth[queue[head]] + 1);
      if (--left[child] === 0) queue.push(child);
    }
  }
  const order = [];
  for (const [index, layer] of depth.entries()) (order[layer] ??= []).push(index);
  let skipped = 0;
  for (const [child, list] of parents.entries()) for (const parent of list) skipped += Math.max(0, depth[child] - depth[parent] - 1);
  const lanes = skipped <= maxLanes;
  // The neighbours each item is ordered by, one layer up and one down: a step's own where its
  // edge is short, the edge's nearest virtual point where it is long.
  const up = lanes ? steps.map(() => []) : parents;
  const down = lanes ? steps.map(() => []) : children;
  const edges = [];
  for (const [child, list] of parents.entries()) {
    for (const parent of list) {
      const via = [];
      if (lanes) {
        let above = parent;
        for (let layer = depth[parent] + 1; layer < depth[child]; layer += 1) {
          const point = up.length;
          up.push([above]);
          down.push([]);
          down[above].push(point);
          order[layer].push(point);
          via.push(point);
          above = point;
        }
        up[child].push(above);
        down[above].push(child);
      }
      edges.push({ parent, child, via });
    }
  }
  // An item's position is its place in its layer scaled to 0..1, so layers of different widths compare.
  const position = new Float64Array(up.length);
  const place = (layer) => layer.forEach((item, at) => (position[item] = (at + 0.5) / layer.length));
  order.forEach(place);
  const key = new Float64Array(up.length);
  const reorder = (layer, neighbours) => {
    for (const item of layer) {
      const list = neighbours[item];
      key[item] = list.length === 0 ? position[item] : list.reduce((sum, other) => sum + position[other], 0) / list.length;
    }
    layer.sort((a, b) => key[a] - key[b]);
    place(layer);
  };
  for (let sweep = 0; sweep < SWEEPS; sweep += 1) {
    for (let at = 1; at < order.length; at += 1) reorder(order[at], up);
    for (let at = order.length - 2; at >= 0; at -= 1) reorder(order[at], down);
  }
  const layers = order.map((layer) => layer.filter((item) => item < steps.length));
  return { layers, order, edges, parents, depth, laned: lanes };
}

/**
 * Where `layoutWorkflow`'s layout puts each step and edge, in the drawing's pixels: `boxes[i]`
 * is step i's { x, y, width, height }, and each of `edges` ({ parent, child, points, d }) runs
 * from its parent's bottom through the lanes of its virtual points (a point each where it enters
 * and leaves a lane's layer) to just above its child's top, where the arrow's tip goes; `d` is
 * its SVG path. A layer's steps and lanes each take their own width, and each layer is centred.
 */
export function placeWorkflow({ order, edges, depth }) {
  const { width, height, gapX, gapY, pad, lane } = NODE;
  const stepCount = depth.length;
  const widthOf = (item) => (item < stepCount ? width : lane);
  const span = (layer) => layer.reduce((sum, item) => sum + widthOf(item) + gapX, -gapX);
  const widest = Math.max(...order.map(span));
  const at = [];
  for (const [row, layer] of order.entries()) {
    let x = pad + (widest - span(layer)) / 2;
    for (const item of layer) {
      at[item] = { x, y: pad + row * (height + gapY), width: widthOf(item), height };
      x += widthOf(item) + gapX;
    }
  }
  const middle = (box) => box.x + box.width / 2;
  const placed = edges.map(({ parent, child, via }) => {
    const from = at[parent];
    const to = at[child];
    const points = [[middle(from), from.y + height]];
    for (const point of via) points.push([middle(at[point]), at[point].y], [middle(at[point]), at[point].y + height]);
    points.push([middle(to), to.y - 4]);
    // Between layers a curve that leaves and arrives upright, so it meets a lane or a node's
    // middle head-on; within a lane's layer a straight run, beside that layer's steps.
    let d = `M${points[0][0]} ${points[0][1]}`;
    for (let index = 1; index < points.length; index += 1) {
      const [[x1, y1], [x2, y2]] = [points[index - 1], points[index]];
      d += index % 2 === 1 ? ` C${x1} ${y1 + gapY / 2} ${x2} ${y2 - gapY / 2} ${x2} ${y2}` : ` L${x2} ${y2}`;
    }
    return { parent, child, points, d };
  });
  return {
    width: widest + 2 * pad,
    height: order.length * (height + gapY) - gapY + 2 * pad,
    boxes: at.slice(0, stepCount),
    edges: placed,
  };
}

export function startWorkflowView({ graphql, subscribe, el, openJob }) {
  let shownId;
  let stop;
  /** jobId → the node (or row) showing that step, while the drawn graph is the workflow's. */
  let nodes = new Map();
  let drawnShape = '';
  /** Why the shown workflow is listed rather than drawn; empty while it is drawn. */
  let listedBecause = '';
  let jobAsked;
  let fits = () => undefined;
  const resized = new ResizeObserver(() => fits());

  function show(id, { focus = true } = {}) {
    stop?.();
    stop = undefined;
    shownId = id;
    nodes = new Map();
    drawnShape = '';
    delete $('workflows').dataset.finished;
    resized.disconnect();
    $('workflow-id').value = id;
    $('workflow-error').textContent = '';
    $('workflow-status').textContent = 'Loading…';
    $('workflow-view').replaceChildren();
    if (focus) {
      $('workflows').focus();
      $('workflows').scrollIntoView({ block: 'start' });
    }
    stop = subscribe(
      { query: `subscription Workflow($id: ID!) { workflowUpdated(id: $id) { ${WORKFLOW_FIELDS} } }`, variables: { id } },
      {
        next: (message) => {
          if (shownId !== id) return;
          if (message.data?.workflowUpdated) render(message.data.workflowUpdated);
          else if (message.errors?.length) refuse(message.errors);
        },
        error: (errors) => {
          if (shownId === id) refuse(Array.isArray(errors) ? errors : [{ message: 'the live connection failed' }]);
        },
        complete: () => undefined,
      },
    );
  }

  function refuse(errors) {
    $('workflow-status').textContent = '';
    $('workflow-view').replaceChildren();
    const notFound = errors.some((error) => error.extensions?.code === 'NOT_FOUND');
    $('workflow-error').textContent = notFound ? `No workflow ${shownId} is yours to see.` : `Could not show the workflow: ${errors[0]?.message ?? 'unknown error'}`;
  }

  function render(workflow) {
    const shape = workflow.steps.map((step) => `${step.jobId}:${step.dependsOn.join(',')}`).join(';');
    if (shape !== drawnShape) {
      drawnShape = shape;
      nodes = new Map();
      const fewSteps = workflow.steps.length <= GRAPH_MAX_STEPS;
      const layout = layoutWorkflow(workflow.steps, { maxLanes: fewSteps ? GRAPH_MAX_LANES : 0 });
      listedBecause = !fewSteps
        ? `a graph is drawn up to ${GRAPH_MAX_STEPS} steps`
        : layout.laned
          ? ''
          : `its arrows skip more rows than a drawing could show apart (${GRAPH_MAX_LANES.toLocaleString('en')} row crossings at most)`;
      resized.disconnect();
      $('workflow-view').replaceChildren(listedBecause ? listSteps(workflow, layout) : drawGraph(workflow, layout));
    }
    for (const step of workflow.steps) nodes.get(step.jobId)?.(step);
    const counts = new Map();
    for (const step of workflow.steps) counts.set(step.status, (counts.get(step.status) ?? 0) + 1);
    const parts = Object.keys(STATE).filter((status) => counts.has(status)).map((status) => `${counts.get(status)} ${stateOf(status).label.toLowerCase()}`);
    const steps = workflow.steps.length;
    $('workflow-status').textContent =
      `Workflow ${workflow.id}: ${steps} step${steps === 1 ? '' : 's'}, ${parts.join(', ')}.` +
      (workflow.finished ? ' Finished.' : '') +
      (listedBecause ? ` Listed by layer: ${listedBecause}.` : '');
    $('workflows').dataset.finished = String(workflow.finished);
  }

  function drawGraph(workflow, layout) {
    const { width, height } = NODE;
    const { width: graphWidth, height: graphHeight, boxes, edges: placed } = placeWorkflow(layout);
    const edges = svg('g', { class: 'edges', 'aria-hidden': 'true' });
    for (const { d } of placed) edges.append(svg('path', { d, 'marker-end': 'url(#workflow-arrow)' }));
    const steps = svg('g', { class: 'steps' });
    // In layer order, so that the Tab key walks the graph from its roots down.
    for (const index of layout.layers.flat()) {
      const step = workflow.steps[index];
      const { x, y } = boxes[index];
      // A button named by its lines as they read, "fetch stage Running": the glyph beside the state's
      // word is hidden from that name. (An aria-label would differ from the text shown, which axe refuses.)
      const glyph = svg('text', { class: 'glyph', x: 10, y: 57, 'aria-hidden': 'true' });
      const state = svg('text', { class: 'state', x: 26, y: 57 });
      const name = shorten(step.name, NAME_CHARS);
      const node = svg(
        'g',
        { class: 'step', transform: `translate(${x} ${y})`, role: 'button', tabindex: 0, 'data-name': step.name },
        svg('rect', { class: 'ring', x: -4, y: -4, width: width + 8, height: height + 8, rx: 9 }),
        svg('rect', { class: 'box', width, height, rx: 6 }),
        svg('text', { class: 'name', x: 10, y: 20 }, name),
        svg('text', { class: 'kind', x: 10, y: 38 }, shorten(step.kind, NAME_CHARS + 2)),
        glyph,
        state,
        name === step.name ? null : svg('title', {}, step.name),
      );
      const open = () => openJob(step.jobId);
      node.addEventListener('click', open);
      node.addEventListener('keydown', (event) => {
        if (event.key !== 'Enter' && event.key !== ' ') return;
        event.preventDefault();
        open();
      });
      nodes.set(step.jobId, (current) => {
        const { label, glyph: mark } = stateOf(current.status);
        node.dataset.status = current.status;
        glyph.textContent = mark;
        state.textContent = label;
      });
      steps.append(node);
    }
    const arrow = svg(
      'defs',
      {},
      svg('marker', { id: 'workflow-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0 0 L10 5 L0 10 z' })),
    );
    const drawing = svg(
      'svg',
      { width: graphWidth, height: graphHeight, viewBox: `0 0 ${graphWidth} ${graphHeight}`, role: 'group', 'aria-label': `The workflow's ${workflow.steps.length} steps, each above the steps that wait for it` },
      arrow,
      edges,
      steps,
    );
    const wrap = el('div', { className: 'workflow-graph' }, drawing);
    // A graph a little wider than the panel is scaled down to fit; a much wider one would be
    // unreadable so, and scrolls. Decided again when the panel's width changes (a phone turned).
    fits = () => wrap.classList.toggle('fit', graphWidth <= wrap.clientWidth * 1.25);
    resized.observe(wrap);
    return el('div', {}, el('p', { className: 'hint', textContent: 'Arrows run from a step to the steps that wait for it. Choose a step to open its job.' }), wrap);
  }

  function listSteps(workflow, { layers }) {
    const head = el('tr', {}, ...['Layer', 'Step', 'Kind', 'State', 'Waits for'].map((name) => el('th', { scope: 'col', textContent: name })));
    const rows = [];
    for (const [depth, layer] of layers.entries()) {
      for (const index of layer) {
        const step = workflow.steps[index];
        const open = el('button', { type: 'button', className: 'job-link' }, step.name, el('span', { className: 'visually-hidden', textContent: ': open its job' }));
        open.addEventListener('click', () => openJob(step.jobId));
        const chip = el('span', { className: 'chip' });
        const row = el('tr', {}, el('td', { textContent: String(depth + 1) }), el('td', {}, open), el('td', { textContent: step.kind }), el('td', {}, chip), el('td', { textContent: step.dependsOn.join(', ') || '—' }));
        row.dataset.name = step.name;
        nodes.set(step.jobId, (current) => {
          const { label, glyph } = stateOf(current.status);
          row.dataset.status = current.status;
          chip.dataset.status = current.status;
          chip.replaceChildren(el('span', { ariaHidden: 'true', textContent: `${glyph} ` }), label);
        });
        rows.push(row);
      }
    }
    const table = el('table', { className: 'console-table' }, el('thead', {}, head), el('tbody', {}, ...rows));
    return el('div', { className: 'table-wrap', tabIndex: 0, role: 'region', ariaLabel: 'The workflow\'s steps by layer' }, table);
  }

  /** In the job view: which workflow the job is a step of, with a link to its graph. */
  async function showForJob(jobId) {
    jobAsked = jobId;
    const place = $('detail-workflow');
    place.hidden = true;
    place.replaceChildren();
    let step;
    try {
      step = (await graphql('query StepOf($id: ID!) { job(id: $id) { workflowStep { workflowId name } } }', { id: jobId })).job?.workflowStep;
    } catch {
      return; // The job view says what went wrong with the job itself.
    }
    if (!step || jobAsked !== jobId) return;
    const link = el('a', { href: `#workflow/${encodeURIComponent(step.workflowId)}` }, 'Show the workflow graph');
    // The hash does not change when it already names this workflow; open it all the same.
    link.addEventListener('click', () => {
      if (location.hash === link.hash) show(step.workflowId);
    });
    place.replaceChildren(el('p', {}, 'Step ', el('strong', { textContent: step.name }), ' of workflow ', el('code', { textContent: step.workflowId }), '. ', link));
    place.hidden = false;
  }

  function fromHash() {
    const match = /^#workflow\/(.+)$/.exec(location.hash);
    if (match) show(decodeURIComponent(match[1]));
  }

  $('workflow-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const id = $('workflow-id').value.trim();
    if (!id) {
      $('workflow-error').textContent = 'Enter a workflow ID.';
      $('workflow-id').focus();
      return;
    }
    const hash = `#workflow/${encodeURIComponent(id)}`;
    if (location.hash === hash) show(id);
    else location.hash = hash;
  });
  window.addEventListener('hashchange', fromHash);
  fromHash();

  return {
    showForJob,
    /** A new key: the shown workflow is read again, as that key may see it. */
    restart() {
      if (shownId !== undefined) show(shownId, { focus: false });
    },
  };
}
