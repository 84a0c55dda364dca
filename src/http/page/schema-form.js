// A form built from a kind's input schema (JSON Schema 2020-12, as zod 4 writes it). It renders
// what a person can fill in sensibly (strings, numbers, booleans, enums, arrays, nested objects)
// and falls back to a JSON text area for any part it cannot, so every kind stays submittable.
// Names and texts from the schema are untrusted: they only ever reach the DOM as text.
//
// The checks here are a courtesy, to catch a mistake before a round trip; the server's schema
// is the judge, and its refusals are shown next to the field they name.

const MAX_DEPTH = 8;

let nextId = 0;

function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  Object.assign(element, props);
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** Follows a local `$ref` into the root's `$defs`; a recursive one ends as a JSON field. */
function resolve(schema, root, depth) {
  let current = schema;
  for (let hops = 0; current && typeof current.$ref === 'string' && hops < MAX_DEPTH; hops += 1) {
    const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(current.$ref);
    const target = match ? root?.[match[1]]?.[match[2].replaceAll('~1', '/').replaceAll('~0', '~')] : undefined;
    if (!target) return {};
    current = target;
  }
  if (depth > MAX_DEPTH) return {};
  return current && typeof current === 'object' ? current : {};
}

/** `{ type: [T, 'null'] }` and `anyOf: [X, { type: 'null' }]` are X that may also be null. */
function unwrapNullable(schema) {
  if (Array.isArray(schema.type) && schema.type.includes('null')) {
    const others = schema.type.filter((type) => type !== 'null');
    if (others.length === 1) return { schema: { ...schema, type: others[0] }, nullable: true };
  }
  const options = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(options) && options.length === 2) {
    const rest = options.filter((option) => option?.type !== 'null');
    if (rest.length === 1) {
      const { anyOf, oneOf, ...own } = schema;
      return { schema: { ...own, ...rest[0] }, nullable: true };
    }
  }
  return { schema, nullable: false };
}

function kindOf(schema) {
  if (Array.isArray(schema.enum) && schema.enum.length > 0 && schema.enum.every(isScalar)) return 'enum';
  if ('const' in schema && isScalar(schema.const)) return 'enum';
  if (schema.type === 'string') return 'string';
  if (schema.type === 'integer' || schema.type === 'number') return 'number';
  if (schema.type === 'boolean') return 'boolean';
  if (schema.type === 'array' && schema.items && typeof schema.items === 'object' && !schema.prefixItems) return 'array';
  if (schema.type === 'object' && schema.properties && typeof schema.properties === 'object') return 'object';
  return 'json';
}

function isScalar(value) {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The constraints a field has, in words, for its hint. */
function constraintText(schema, kind) {
  const parts = [];
  if (kind === 'string') {
    const { minLength: min, maxLength: max } = schema;
    if (min !== undefined && max !== undefined) parts.push(`${min} to ${plural(max, 'character')}`);
    else if (min !== undefined && min > 0) parts.push(`At least ${plural(min, 'character')}`);
    else if (max !== undefined) parts.push(`At most ${plural(max, 'character')}`);
    if (schema.pattern) parts.push(`Must match ${schema.pattern}`);
    if (schema.format) parts.push(`Format: ${schema.format}`);
  } else if (kind === 'number') {
    const low = schema.exclusiveMinimum ?? schema.minimum;
    const high = schema.exclusiveMaximum ?? schema.maximum;
    const what = schema.type === 'integer' ? 'A whole number' : 'A number';
    const safe = (value) => value !== undefined && Math.abs(value) < Number.MAX_SAFE_INTEGER;
    if (safe(low) && safe(high)) parts.push(`${what} from ${low} to ${high}`);
    else if (safe(low)) parts.push(`${what}, at least ${low}`);
    else if (safe(high)) parts.push(`${what}, at most ${high}`);
    else parts.push(what);
    if (schema.exclusiveMinimum !== undefined || schema.exclusiveMaximum !== undefined) parts.push('bounds excluded');
    if (schema.multipleOf !== undefined) parts.push(`a multiple of ${schema.multipleOf}`);
  } else if (kind === 'array') {
    if (schema.minItems) parts.push(`At least ${plural(schema.minItems, 'item')}`);
    if (schema.maxItems !== undefined) parts.push(`At most ${plural(schema.maxItems, 'item')}`);
  } else if (kind === 'json') {
    parts.push('Any JSON value, such as "text", 12, true, [1, 2] or {"a": 1}');
  }
  return parts.join('; ');
}

function sentences(...parts) {
  return parts
    .filter((part) => typeof part === 'string' && part !== '')
    .reduce((text, part) => (text === '' ? part : `${text}${/[.!?]$/.test(text) ? '' : '.'} ${part}`), '');
}

function checkString(schema, text) {
  if (schema.minLength !== undefined && [...text].length < schema.minLength) return `Use at least ${plural(schema.minLength, 'character')}.`;
  if (schema.maxLength !== undefined && [...text].length > schema.maxLength) return `Use at most ${plural(schema.maxLength, 'character')}.`;
  if (schema.pattern) {
    let pattern;
    try {
      pattern = new RegExp(schema.pattern, 'u');
    } catch {
      return null; // A pattern this browser cannot read: the server checks it.
    }
    if (!pattern.test(text)) return `Must match ${schema.pattern}.`;
  }
  return null;
}

function checkNumber(schema, number) {
  if (schema.type === 'integer' && !Number.isInteger(number)) return 'Enter a whole number.';
  if (schema.minimum !== undefined && number < schema.minimum) return `Enter ${schema.minimum} or more.`;
  if (schema.maximum !== undefined && number > schema.maximum) return `Enter ${schema.maximum} or less.`;
  if (schema.exclusiveMinimum !== undefined && number <= schema.exclusiveMinimum) return `Enter more than ${schema.exclusiveMinimum}.`;
  if (schema.exclusiveMaximum !== undefined && number >= schema.exclusiveMaximum) return `Enter less than ${schema.exclusiveMaximum}.`;
  if (schema.multipleOf !== undefined && !Number.isInteger(Number((number / schema.multipleOf).toPrecision(12)))) {
    return `Enter a multiple of ${schema.multipleOf}.`;
  }
  return null;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Builds the form's fields for `schema` into a new element. `read()` gives `{ ok, value }`,
 * marking the fields it refuses; `showError(path, message)` puts a server's refusal next to the
 * field `path` (dot-separated, as the service names fields) names, or its closest parent, and
 * answers whether it found one.
 */
export function buildSchemaForm(schema) {
  const root = schema && typeof schema === 'object' ? schema : {};
  /** path → { show(message), focus() }, for the fields that can hold an error. */
  const targets = new Map();
  const clearers = [];

  /** A labelled control, with its hint and error under it. */
  function wrap(path, label, required, schema, kind, control, { checkbox = false } = {}) {
    const id = `kf-${(nextId += 1)}`;
    control.id = id;
    const errorId = `${id}-error`;
    const hintId = `${id}-hint`;
    const hints = sentences(schema.description, constraintText(schema, kind));
    const labelElement = el('label', { htmlFor: id }, label);
    if (required) {
      labelElement.append(el('span', { className: 'required', textContent: ' *' }));
      labelElement.append(el('span', { className: 'visually-hidden', textContent: ' (required)' }));
    }
    const hint = hints ? el('p', { className: 'hint', id: hintId, textContent: hints }) : null;
    const error = el('p', { className: 'field-error', id: errorId, hidden: true });
    control.setAttribute('aria-describedby', hint ? `${errorId} ${hintId}` : errorId);
    if (required && !checkbox) control.setAttribute('aria-required', 'true');
    const field = checkbox
      ? el('div', { className: 'field checkbox' }, el('div', { className: 'check' }, control, labelElement), hint, error)
      : el('div', { className: 'field' }, labelElement, control, hint, error);
    field.dataset.path = path.join('.');
    const show = (message) => {
      control.setAttribute('aria-invalid', message ? 'true' : 'false');
      error.textContent = message ?? '';
      error.hidden = !message;
    };
    // An error is about the value it was given; once the value changes it no longer holds.
    control.addEventListener('input', () => {
      if (!error.hidden) show(null);
    });
    targets.set(path.join('.'), { show, focus: () => control.focus() });
    clearers.push(() => show(null));
    return { field, show };
  }

  /**
   * One field. Returns `{ element, read }`; read() gives `{ present, value }` or `{ error }`
   * (already shown), where absent means "leave it out" for an optional field.
   */
  function field(rawSchema, path, label, required, depth) {
    const { schema, nullable } = unwrapNullable(resolve(rawSchema, root, depth));
    const kind = depth > MAX_DEPTH ? 'json' : kindOf(schema);
    const hasDefault = 'default' in schema;
    const empty = () => (nullable && required ? { present: true, value: null } : { present: false });

    if (kind === 'object') {
      const children = Object.entries(schema.properties).map(([name, child]) => ({
        name,
        ...field(child, [...path, name], child?.title ?? name, (Array.isArray(schema.required) && schema.required.includes(name)), depth + 1),
      }));
      const read = () => {
        const value = {};
        let failed = false;
        for (const child of children) {
          const result = child.read();
          if (result.error) failed = true;
          else if (result.present) value[child.name] = result.value;
        }
        if (failed) return { error: true };
        if (!required && path.length > 0 && Object.keys(value).length === 0) return { present: false };
        return { present: true, value };
      };
      if (path.length === 0) return { element: el('div', { className: 'schema-fields' }, ...children.map((c) => c.element)), read };
      const legend = el('legend', {}, label);
      if (required) legend.append(el('span', { className: 'required', textContent: ' *' }), el('span', { className: 'visually-hidden', textContent: ' (required)' }));
      const fieldset = el(
        'fieldset',
        { className: 'schema-object' },
        legend,
        schema.description ? el('p', { className: 'hint', textContent: schema.description }) : null,
        ...children.map((c) => c.element),
      );
      fieldset.dataset.path = path.join('.');
      return { element: fieldset, read };
    }

    if (kind === 'array') return arrayField(schema, path, label, required, depth);

    if (kind === 'boolean') {
      const input = el('input', { type: 'checkbox', checked: schema.default === true });
      const { field: element } = wrap(path, label, false, schema, kind, input, { checkbox: true });
      // An unticked box is an answer (false) when the kind asks for one or has a default.
      const read = () => (input.checked || required || hasDefault ? { present: true, value: input.checked } : { present: false });
      return { element, read };
    }

    if (kind === 'enum') {
      const values = Array.isArray(schema.enum) ? schema.enum : [schema.const];
      const select = el('select', {});
      const initial = hasDefault ? values.findIndex((value) => value === schema.default) : -1;
      if (!(values.length === 1 && required) && initial === -1) select.append(el('option', { value: '', textContent: required ? 'Choose…' : '(none)' }));
      values.forEach((value, index) => {
        select.append(el('option', { value: String(index), textContent: typeof value === 'string' ? value : JSON.stringify(value) }));
      });
      if (initial !== -1) select.value = String(initial);
      const { field: element, show } = wrap(path, label, required, schema, kind, select);
      const read = () => {
        show(null);
        if (select.value === '') {
          if (!required) return { present: false };
          show('Choose one.');
          return { error: true };
        }
        return { present: true, value: values[Number(select.value)] };
      };
      return { element, read };
    }

    if (kind === 'string' || kind === 'number') {
      const long = kind === 'string' && (schema.maxLength ?? 0) > 200;
      const input = long
        ? el('textarea', { rows: 3, spellcheck: false })
        : el('input', { type: 'text', autocomplete: 'off', spellcheck: false });
      if (kind === 'number') input.inputMode = schema.type === 'integer' ? 'numeric' : 'decimal';
      if (kind === 'string' && schema.maxLength !== undefined) input.maxLength = schema.maxLength;
      if (hasDefault && isScalar(schema.default) && schema.default !== null) input.value = String(schema.default);
      const { field: element, show } = wrap(path, label, required, schema, kind, input);
      const read = () => {
        show(null);
        const text = kind === 'number' ? input.value.trim() : input.value;
        const fail = (message) => {
          show(message);
          return { error: true };
        };
        if (text === '') {
          if (!required) return { present: false };
          if (kind === 'string' && !schema.minLength) {
            const problem = checkString(schema, '');
            return problem ? fail(problem) : { present: true, value: '' };
          }
          if (nullable) return { present: true, value: null };
          return fail(kind === 'number' ? 'Enter a number.' : 'Enter a value.');
        }
        if (kind === 'number') {
          if (!NUMBER.test(text)) return fail('Enter a number like 12 or -0.5.');
          const number = Number(text);
          const problem = checkNumber(schema, number);
          return problem ? fail(problem) : { present: true, value: number };
        }
        const problem = checkString(schema, text);
        return problem ? fail(problem) : { present: true, value: text };
      };
      return { element, read };
    }

    // Anything else: the value as JSON text.
    const area = el('textarea', { rows: 3, spellcheck: false, className: 'json' });
    if (hasDefault) area.value = JSON.stringify(schema.default, null, 2);
    const { field: element, show } = wrap(path, label, required, schema, 'json', area);
    const read = () => {
      show(null);
      if (area.value.trim() === '') {
        if (required) {
          show('Enter a JSON value.');
          return { error: true };
        }
        return empty();
      }
      try {
        return { present: true, value: JSON.parse(area.value) };
      } catch {
        show('This is not valid JSON.');
        return { error: true };
      }
    };
    return { element, read };
  }

  /** Rows of one item schema each, with buttons to add and remove them. */
  function arrayField(schema, path, label, required, depth) {
    const rows = el('ol', { className: 'array-rows' });
    const items = [];
    const legend = el('legend', {}, label);
    if (required) legend.append(el('span', { className: 'required', textContent: ' *' }), el('span', { className: 'visually-hidden', textContent: ' (required)' }));
    const hintText = sentences(schema.description, constraintText(schema, 'array'));
    const error = el('p', { className: 'field-error', hidden: true });
    const addButton = el('button', { type: 'button', className: 'add-row' }, 'Add item', el('span', { className: 'visually-hidden', textContent: ` to ${label}` }));
    const fieldset = el(
      'fieldset',
      { className: 'schema-array' },
      legend,
      hintText ? el('p', { className: 'hint', textContent: hintText }) : null,
      rows,
      addButton,
      error,
    );
    fieldset.dataset.path = path.join('.');
    const show = (message) => {
      error.textContent = message ?? '';
      error.hidden = !message;
    };
    targets.set(path.join('.'), { show, focus: () => (rows.querySelector('input, select, textarea') ?? addButton).focus() });
    clearers.push(() => show(null));

    const renumber = () => {
      items.forEach((item, index) => {
        item.label.textContent = `Item ${index + 1}`;
        item.remove.lastChild.textContent = ` item ${index + 1} of ${label}`;
      });
      addButton.disabled = schema.maxItems !== undefined && items.length >= schema.maxItems;
    };
    let made = 0;
    const addRow = (value, focus) => {
      // Each row's path is a number of its own, never reused; renumbering keeps the labels true,
      // and a server error for an index finds the row now at that place (see rowPath).
      const index = made;
      made += 1;
      const itemSchema = value === undefined ? schema.items : { ...resolve(schema.items, root, depth), default: value };
      const row = field(itemSchema, [...path, String(index)], `Item ${items.length + 1}`, true, depth + 1);
      const remove = el('button', { type: 'button', className: 'remove-row' }, 'Remove', el('span', { className: 'visually-hidden' }));
      const li = el('li', {}, row.element, remove);
      const item = { ...row, remove, label: row.element.querySelector('label, legend') ?? el('span') };
      remove.addEventListener('click', () => {
        items.splice(items.indexOf(item), 1);
        li.remove();
        renumber();
        addButton.focus();
      });
      items.push(item);
      rows.append(li);
      renumber();
      if (focus) row.element.querySelector('input, select, textarea')?.focus();
    };
    addButton.addEventListener('click', () => addRow(undefined, true));
    for (const value of Array.isArray(schema.default) ? schema.default : []) addRow(value, false);

    rowTargets.set(path.join('.'), items);
    const read = () => {
      show(null);
      const value = [];
      let failed = false;
      for (const item of items) {
        const result = item.read();
        if (result.error) failed = true;
        else value.push(result.present ? result.value : null);
      }
      if (failed) return { error: true };
      if (schema.minItems && value.length < schema.minItems && (required || value.length > 0)) {
        show(`Add at least ${plural(schema.minItems, 'item')}.`);
        return { error: true };
      }
      if (value.length === 0 && !required) return { present: false };
      return { present: true, value };
    };
    return { element: fieldset, read };
  }

  /** An array's rows by the array's path, so `tags.1` finds the row shown second. */
  const rowTargets = new Map();
  const top = field(root, [], 'Input (JSON)', true, 0);

  return {
    element: top.element,
    /** The input the form describes, or `{ ok: false }` with every refused field marked. */
    read() {
      for (const clear of clearers) clear();
      const result = top.read();
      if (result.error) {
        const bad = top.element.querySelector('[aria-invalid="true"], .schema-array > .field-error:not([hidden])');
        (bad?.matches('.field-error') ? bad.parentElement.querySelector(':scope > .add-row') : bad)?.focus();
        return { ok: false };
      }
      return { ok: true, value: result.present ? result.value : {} };
    },
    clearErrors() {
      for (const clear of clearers) clear();
    },
    /** Shows `message` at the field `path` names, or its nearest parent; false when none matches. */
    showError(path, message) {
      const parts = path === '' ? [] : path.split('.');
      for (let length = parts.length; length >= 0; length -= 1) {
        const prefix = parts.slice(0, length);
        const target = targets.get(rowPath(prefix));
        if (target) {
          target.show(message);
          target.focus();
          return true;
        }
      }
      return false;
    },
  };

  /**
   * Maps the indexes in a path to the paths the rows shown at those places were made with; an
   * index past the last row stops at its array.
   */
  function rowPath(parts) {
    const mapped = [];
    for (const part of parts) {
      const items = rowTargets.get(mapped.join('.'));
      if (items) {
        const item = /^\d+$/.test(part) ? items[Number(part)] : undefined;
        if (!item) break;
        mapped.splice(0, mapped.length, ...item.element.dataset.path.split('.'));
      } else {
        mapped.push(part);
      }
    }
    return mapped.join('.');
  }
}
