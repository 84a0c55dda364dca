/**
 * Generators of bad (and some good) input for test/fuzz.test.ts. Each one leans on the places
 * where parsers disagree: number spellings, percent-encoding, nesting, types a client may send
 * in place of the ones the schema names, and frames graphql-ws must refuse.
 */
import fc from 'fast-check';

// ---------------------------------------------------------------------------------------------
// Numbers

const digitRun = (min: number, max: number) =>
  fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((digits) => digits.join(''));

/** Plain decimal notation, the only form the service accepts, including its edge cases. */
export const plainDecimal: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('', '', '-', '+'),
    fc.oneof(digitRun(0, 6), digitRun(1, 40), fc.constantFrom('0', '00', '000000001')),
    fc.option(fc.oneof(digitRun(0, 6), digitRun(0, 40), fc.constant('000')), { nil: undefined }),
  )
  .filter(([, whole, fraction]) => whole.length > 0 || (fraction ?? '').length > 0)
  .map(([sign, whole, fraction]) => `${sign}${whole}${fraction === undefined ? '' : `.${fraction}`}`);

/** Digit counts around the 100-digit limit, with the zeros that still count as digits. */
const manyDigits: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 95, max: 105 }).map((n) => '9'.repeat(n)),
  fc.integer({ min: 95, max: 105 }).map((n) => `0.${'0'.repeat(n - 2)}1`),
  fc.integer({ min: 95, max: 105 }).map((n) => `${'0'.repeat(n - 1)}1`),
  fc.integer({ min: 1, max: 99 }).map((n) => `${'1'.repeat(n)}.${'2'.repeat(100 - n)}`),
);

const WHITESPACE = [' ', '\t', '\n', '\r', '\u00a0', '\u2028', '\u3000', '\ufeff', '\u200b', '\u000b'];

/** Every odd way to write (or almost write) a number. */
const oddNumber: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: plainDecimal, weight: 6 },
  { arbitrary: manyDigits, weight: 2 },
  {
    weight: 2,
    arbitrary: fc
      .tuple(plainDecimal, fc.constantFrom('e', 'E', 'e+', 'e-', 'E-'), digitRun(1, 7))
      .map(([mantissa, e, exponent]) => `${mantissa}${e}${exponent}`),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'NaN', 'nan', '-NaN', 'Infinity', '-Infinity', '+Infinity', 'inf', '∞', '0x1f', '0X1F', '-0x1',
      '0o17', '0b101', '1_000', '1,000', '1,5', '1.2.3', '..1', '1..', '.', '-', '+', '--1', '+-1', '-+1',
      '', '-0', '+0', '-0.000', '0.', '.0', '00', '1e', 'e1', '1f', '1d', '1n', '0n', '١٢٣', '１２３', '𝟏𝟐',
      '²', '½', '1/2', '١.٥', 'null', 'undefined', 'true', '[]', '{}', '1 2', '1\u00002', '\u0000',
      '9007199254740993', '-9007199254740993', '1.7976931348623157e308', '5e-324', '0.1', '0.2',
      '%31', '1%', '1#2', '1?2', '1;2', '١', '٠.١',
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...WHITESPACE), plainDecimal, fc.constantFrom('', ...WHITESPACE))
      .map(([before, number, after]) => `${before}${number}${after}`),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom(...'0123456789+-.eExX,_ '), { minLength: 0, maxLength: 12 })
      .map((chars) => chars.join('')),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
);

/** Odd numbers, and now and then one of thousands of digits. */
const anyNumber: fc.Arbitrary<string> = fc.oneof(
  { weight: 30, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => '7'.repeat(n)) },
);

/**
 * What the service must make of a number: its canonical form, or null when it must be refused.
 * Written from the README's rules (plain notation, at most `maxDigits` digits, no exponent),
 * not from the service's code, so the two can disagree. Surrounding whitespace is ignored, as
 * String.prototype.trim() sees it (Unicode spaces and U+FEFF included): the service does so.
 */
export function canonicalDecimal(raw: string, maxDigits = 100): string | null {
  const match = /^([+-]?)([0-9]*)(?:\.([0-9]*))?$/.exec(raw.trim());
  if (!match) return null;
  const [, sign, whole = '', fraction = ''] = match;
  if (whole === '' && fraction === '') return null;
  if (whole.length + fraction.length > maxDigits) return null;
  const integer = whole.replace(/^0+/, '');
  const decimals = fraction.replace(/0+$/, '');
  if (!integer && !decimals) return '0';
  return `${sign === '-' ? '-' : ''}${integer || '0'}${decimals ? `.${decimals}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// REST paths

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
export const method = fc.constantFrom(...METHODS);

/** Percent-encodes a segment the way a client would, or only partly, or not at all. */
const encodedSegment = (text: string) =>
  fc.constantFrom<(s: string) => string>(
    encodeURIComponent,
    encodeURIComponent,
    (s) => s,
    (s) => s.replace(/[0-9]/g, (d) => `%${d.charCodeAt(0).toString(16)}`),
    (s) => encodeURIComponent(s).replace(/%/g, '%25'),
  ).map((encode) => encode(text));

const brokenEscape = fc.constantFrom('%', '%2', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%FF', '%00', '%2F', '%2e%2e', '%5C', '%25', '%uD800');

const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: anyNumber.chain(encodedSegment) },
  { weight: 2, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.uuid().map((id) => id.toUpperCase()) },
  { weight: 2, arbitrary: fc.constantFrom('', '.', '..', '...', 'api', 'v1', 'add', 'job', 'graphql', 'health', 'ready', 'v2', '%2e', 'ADD', 'Job') },
  { weight: 2, arbitrary: brokenEscape },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }).chain(encodedSegment) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.integer({ min: 2_000, max: 30_000 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom("1' OR '1'='1", '$1', '${x}', '__proto__', 'constructor', ';', ':', '@', '!', '~', '*') },
);

const ROUTE_PREFIXES = ['', '/api', '/api/v1', '/api/v1/add', '/api/v1/job', '/api/v1/add/1', '/graphql', '/health', '/ready', '/api/v2/add', '/API/v1/add', '/api//v1/add'];

export interface RestCase {
  method: string;
  path: string;
  idempotencyKey?: string;
  body?: string;
  contentType?: string;
}

/** Idempotency keys from a small pool, so retries with the same key happen. */
const idempotencyKey = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('k1', 'k2', 'k3', 'retry-me', 'ÄÖÜ-é') },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'x'.repeat(200), 'y'.repeat(201), 'z'.repeat(5000)) },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 30 }) },
);

export const restCase: fc.Arbitrary<RestCase> = fc.oneof(
  {
    // The add route with its numbers encoded losslessly, so every odd number reaches the service.
    weight: 5,
    arbitrary: fc.record(
      {
        method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('POST', 'GET') }, { weight: 1, arbitrary: method }),
        numbers: fc.tuple(anyNumber, anyNumber),
        trailingSlash: fc.boolean(),
        idempotencyKey: fc.option(idempotencyKey, { nil: undefined, freq: 3 }),
        query: fc.constantFrom('', '', '?x=1', '?num1=2', '?', '#frag'),
      },
      { requiredKeys: ['method', 'numbers', 'trailingSlash', 'query'] },
    ).map(({ method, numbers, trailingSlash, idempotencyKey, query }) => ({
      method,
      path: `/api/v1/add/${encodeURIComponent(numbers[0])}/${encodeURIComponent(numbers[1])}${trailingSlash ? '/' : ''}${query}`,
      idempotencyKey,
    })),
  },
  {
    weight: 2,
    arbitrary: fc.record({ method, id: segment, slash: fc.boolean() }).map(({ method, id, slash }) => ({
      method,
      path: `/api/v1/job/${id}${slash ? '/' : ''}`,
    })),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        method,
        prefix: fc.constantFrom(...ROUTE_PREFIXES),
        segments: fc.array(segment, { maxLength: 5 }),
        separator: fc.constantFrom('/', '/', '/', '//', '/./', '/../', '\\'),
        tail: fc.constantFrom('', '', '/', '//', '?', '?a=%zz', '#x', '/..', '/.'),
      })
      .map(({ method, prefix, segments, separator, tail }) => ({
        method,
        path: `${prefix}${segments.map((s) => `${separator}${s}`).join('')}${tail}` || '/',
      })),
  },
  {
    // A REST route with a body it does not read, in every content type.
    weight: 1,
    arbitrary: fc
      .record({
        method: fc.constantFrom('POST', 'PUT', 'PATCH'),
        numbers: fc.tuple(plainDecimal, plainDecimal),
        body: fc.oneof(fc.json(), fc.string(), fc.integer({ min: 50_001, max: 70_000 }).map((n) => 'b'.repeat(n))),
        contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'),
      })
      .map(({ method, numbers, body, contentType }) => ({
        method,
        path: `/api/v1/add/${encodeURIComponent(numbers[0])}/${encodeURIComponent(numbers[1])}`,
        body,
        contentType,
      })),
  },
);

// ---------------------------------------------------------------------------------------------
// GraphQL documents

const FIELDS = [
  'job', 'jobs', 'addJob', 'addJobs', 'retrieveJob', 'cancelJob', 'jobUpdated', '__typename', '__schema', '__type',
  'id', 'status', 'num1', 'num2', 'result', 'attempt', 'maxAttempts', 'lastError', 'priority', 'idempotencyKey',
  'version', 'runAt', 'createdAt', 'lastUpdated', 'completedOn', 'retrievedAt', 'nodes', 'edges', 'node', 'cursor',
  'pageInfo', 'hasNextPage', 'endCursor', 'created', 'types', 'name', 'fields', 'type', 'ofType', 'kind',
  'nope', 'constructor', '__proto__', 'toString', 'Job', 'query',
];
const ARG_NAMES = ['id', 'input', 'inputs', 'first', 'after', 'status', 'num1', 'num2', 'priority', 'runAt', 'idempotencyKey', 'if', 'name', 'bogus'];
const TYPES = ['Job', 'Query', 'Mutation', 'Subscription', 'AddJobPayload', 'JobConnection', 'JobEdge', 'PageInfo', 'Nope', 'String', 'AddJobInput'];
const VARIABLE_TYPES = ['ID!', 'ID', 'Int', 'Int!', 'String', 'Decimal!', 'Decimal', 'DateTime', 'AddJobInput!', 'AddJobInput', '[AddJobInput!]!', 'JobStatus', 'Boolean!', 'Float', 'Nope', '[[Int]]', '[Decimal!]'];
const VARIABLES = ['$a', '$b', '$input', '$id', '$nope'];

const name = fc.constantFrom(...FIELDS);
const stringLiteral = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 8 }).map((s) => JSON.stringify(s)),
  oddNumber.map((s) => JSON.stringify(s)),
  fc.uuid().map((s) => JSON.stringify(s)),
  fc.constantFrom('"\\u0000"', '"\\uD800"', '"\\x41"', '"unterminated', '"""block "" string"""', '"""', '"\\"', '"\n"'),
);
const scalarLiteral: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: stringLiteral },
  { weight: 2, arbitrary: oddNumber.filter((s) => /^-?[0-9]/.test(s) && !/\s/.test(s)) },
  { weight: 2, arbitrary: fc.constantFrom('0', '-0', '1', '100', '101', '2147483647', '2147483648', '-2147483649', '99999999999999999999999', '1.5', '1e400', '-1e-400', '0x10', '01') },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null', 'PENDING', 'pending', 'CANCELLED', 'NOPE', 'Infinity', 'NaN') },
  { weight: 1, arbitrary: fc.constantFrom(...VARIABLES) },
);

const { value: valueLiteral } = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 5, arbitrary: scalarLiteral },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(', ')}]`) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.tuple(fc.constantFrom(...ARG_NAMES), tie('value')), { maxLength: 3 })
        .map((fields) => `{ ${fields.map(([key, value]) => `${key}: ${value}`).join(', ')} }`),
    },
  ),
}));

/** An input object literal for AddJobInput: mostly well-formed, with odd numbers in it. */
const addJobInputLiteral = fc
  .record(
    {
      num1: fc.oneof(oddNumber.map((s) => JSON.stringify(s)), valueLiteral),
      num2: fc.oneof(oddNumber.map((s) => JSON.stringify(s)), valueLiteral),
      idempotencyKey: fc.oneof(stringLiteral, fc.constant('null')),
      priority: scalarLiteral,
      runAt: fc.oneof(fc.constantFrom('"2030-01-01T00:00:00Z"', '"-271821-04-20T00:00:00Z"', '"tomorrow"', '"0000-01-01T00:00:00Z"'), stringLiteral),
      extra: valueLiteral,
    },
    { requiredKeys: [] },
  )
  .map((fields) => `{ ${Object.entries(fields).map(([key, value]) => `${key}: ${value}`).join(', ')} }`);

const args = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  {
    weight: 3,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...ARG_NAMES), valueLiteral), { minLength: 1, maxLength: 3 })
      .map((pairs) => `(${pairs.map(([key, value]) => `${key}: ${value}`).join(', ')})`),
  },
  { weight: 2, arbitrary: addJobInputLiteral.map((input) => `(input: ${input})`) },
  { weight: 1, arbitrary: fc.array(addJobInputLiteral, { maxLength: 3 }).map((inputs) => `(inputs: [${inputs.join(', ')}])`) },
);

const directives = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom(' @include(if: true)', ' @skip(if: false)', ' @skip(if: true)', ' @include(if: $a)', ' @nope', ' @deprecated', ' @include', ' @skip(if: 1)') },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 12 }).map((n) => ' @include(if: true)'.repeat(n)) },
);

/**
 * A mutation that adds jobs must show their ids in its answer, so the test can tell every job a
 * request created; so `addJob`/`addJobs` always select `job { id }` next to anything else.
 */
const JOB_ID = 'job { id }';

const { selectionSet } = fc.letrec<{ selectionSet: string; selection: string }>((tie) => ({
  selectionSet: fc
    .array(tie('selection'), { minLength: 0, maxLength: 4, depthIdentifier: 'selection' })
    .map((selections) => `{ ${selections.join(' ')} }`),
  selection: fc.oneof(
    { depthSize: 'small', depthIdentifier: 'selection', withCrossShrink: true },
    {
      weight: 4,
      arbitrary: fc
        .record({
          alias: fc.option(fc.constantFrom('a', 'b', 'job', 'id', 'x1', 'addJob'), { freq: 4, nil: '' }),
          name,
          args,
          directives,
          body: fc.option(tie('selectionSet'), { nil: '' }),
        })
        .map(({ alias, name, args, directives, body }) => {
          const adds = name === 'addJob' || name === 'addJobs';
          const inner = adds ? `{ ${JOB_ID} ${body.slice(1, -1)} }` : body;
          return `${alias ? `${alias}: ` : ''}${name}${args}${directives}${inner ? ` ${inner}` : ''}`;
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.option(fc.constantFrom(...TYPES), { nil: undefined }), directives, tie('selectionSet'))
        .map(([type, directive, body]) => `...${type ? ` on ${type}` : ''}${directive} ${body}`),
    },
    { weight: 1, arbitrary: fc.constantFrom('...F1', '...F2', '...Nope', '... F1 @skip(if: false)') },
  ),
}));

const variableDefinitions = fc.oneof(
  { weight: 2, arbitrary: fc.constant('') },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...VARIABLES), fc.constantFrom(...VARIABLE_TYPES), fc.option(scalarLiteral, { nil: undefined, freq: 4 })), { minLength: 1, maxLength: 3 })
      .map((definitions) => `(${definitions.map(([v, type, fallback]) => `${v}: ${type}${fallback ? ` = ${fallback}` : ''}`).join(', ')})`),
  },
);

const operation = fc
  .record({
    keyword: fc.constantFrom('', 'query', 'mutation', 'mutation', 'subscription', 'Query', 'fragment'),
    name: fc.constantFrom('', '', ' Op', ' Op2', ' query'),
    variables: variableDefinitions,
    directives,
    body: selectionSet,
  })
  .map(({ keyword, name, variables, directives, body }) =>
    keyword ? `${keyword}${name}${variables}${directives} ${body}` : body,
  );

const fragmentDefinition = fc
  .tuple(fc.constantFrom('F1', 'F2', 'F1', 'on'), fc.constantFrom(...TYPES), selectionSet)
  .map(([fragment, type, body]) => `fragment ${fragment} on ${type} ${body}`);

/** Documents that mostly parse, built from the schema's own names and some that are not in it. */
const structuredDocument: fc.Arbitrary<string> = fc
  .tuple(fc.array(operation, { minLength: 1, maxLength: 2 }), fc.array(fragmentDefinition, { maxLength: 2 }))
  .map(([operations, fragments]) => [...operations, ...fragments].join('\n'));

/** Documents past the limits: deep, wide, many aliases, fragments or directives. */
const hugeDocument: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 11, max: 12_000 }).map((n) => `{ ${'jobs { nodes { '.repeat(1)}${'... on Job { '.repeat(n)}id${' }'.repeat(n)} } } }`),
  fc.integer({ min: 100, max: 12_000 }).map((n) => `{ ${'a { '.repeat(n)}b${' }'.repeat(n)} }`),
  fc.integer({ min: 100, max: 12_000 }).map((n) => `{ jobs(after: ${'['.repeat(n)}"x"${']'.repeat(n)}) { pageInfo { hasNextPage } } }`),
  fc.integer({ min: 100, max: 8_000 }).map((n) => `{ jobs(after: ${'{ a: '.repeat(n)}1${' }'.repeat(n)}) { pageInfo { hasNextPage } } }`),
  fc.integer({ min: 100, max: 8_000 }).map((n) => `query(${'$a: '}${'['.repeat(n)}Int${']'.repeat(n)}) { __typename }`),
  fc.integer({ min: 16, max: 4_000 }).map((n) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`),
  fc.integer({ min: 500, max: 12_000 }).map((n) => `{ jobs { nodes { ${'id '.repeat(n)}} } }`),
  fc.integer({ min: 20, max: 3_000 }).map((n) =>
    `{ ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} }`).join(' ')} fragment F${n} on Query { __typename }`,
  ),
  fc.constant('{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }'),
  fc.integer({ min: 20, max: 5_000 }).map((n) => `{ __typename${' @skip(if: false)'.repeat(n)} }`),
  fc.integer({ min: 10, max: 2_000 }).map((n) => `mutation { ${Array.from({ length: n }, (_, i) => `m${i}: cancelJob(id: "x") { id }`).join(' ')} }`),
  fc.integer({ min: 2, max: 1_000 }).map((n) => `{ ${'jobs { nodes { id } } '.repeat(n)}}`),
  fc.integer({ min: 2, max: 3_000 }).map((n) => `${'query Q { __typename } '.repeat(n)}`),
  fc.integer({ min: 1, max: 12 }).map((n) => `{ __schema { types { ${'fields { type { ofType { '.repeat(n)}name${' } } }'.repeat(n)} } } }`),
  fc.integer({ min: 1_000, max: 60_000 }).map((n) => `{ job(id: "${'s'.repeat(n)}") { id } }`),
  fc.integer({ min: 1_000, max: 9_990 }).map((n) => `{ ${'__typename '.repeat(n)}}`),
);

const TOKENS = ['{', '}', '(', ')', '[', ']', ':', '$', '@', '!', '=', '|', '&', '...', '..', '.', ',', '#', '"', '"""', '\\', 'query', 'mutation', 'subscription', 'fragment', 'on', 'true', 'null', '1', '-1', '1e5', '0x1', '"s"', ...FIELDS.slice(0, 12), '\u0000', '\ufeff', '\u2028', 'é', '😀', '\t', '\n'];

/** Token soup: mostly not GraphQL at all. */
const tokenSoup: fc.Arbitrary<string> = fc
  .array(fc.constantFrom(...TOKENS), { maxLength: 60 })
  .map((tokens) => tokens.join(' '));

export const anyDocument = fc.oneof(
  { weight: 6, arbitrary: structuredDocument },
  { weight: 2, arbitrary: hugeDocument },
  { weight: 2, arbitrary: tokenSoup },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

/**
 * Several mutations in one document, as a client batching its work would send: adds (mostly
 * valid), and cancels, retrievals and adds that fail. Each root field runs after the one before,
 * so a failure must not take the results of the others with it.
 */
export const mutationBatch: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc
          .record({ num1: plainDecimal, num2: plainDecimal, key: fc.option(fc.constantFrom('m1', 'm2', 'k1'), { nil: undefined }) })
          .map(({ num1, num2, key }) => `addJob(input: { num1: ${JSON.stringify(num1)}, num2: ${JSON.stringify(num2)}${key ? `, idempotencyKey: "${key}"` : ''} }) { created ${JOB_ID} }`),
      },
      { weight: 1, arbitrary: oddNumber.map((n) => `addJob(input: { num1: ${JSON.stringify(n)}, num2: "1" }) { created ${JOB_ID} }`) },
      { weight: 1, arbitrary: fc.array(plainDecimal, { minLength: 1, maxLength: 3 }).map((ns) => `addJobs(inputs: [${ns.map((n) => `{ num1: ${JSON.stringify(n)}, num2: "2" }`).join(', ')}]) { ${JOB_ID} }`) },
      { weight: 1, arbitrary: fc.oneof(fc.uuid(), fc.constantFrom('x', '')).map((id) => `cancelJob(id: ${JSON.stringify(id)}) { id status }`) },
      { weight: 1, arbitrary: fc.oneof(fc.uuid(), fc.constantFrom('x', '')).map((id) => `retrieveJob(id: ${JSON.stringify(id)}) { id status }`) },
    ),
    { minLength: 2, maxLength: 4 },
  )
  .map((fields) => `mutation { ${fields.map((field, index) => `m${index}: ${field}`).join(' ')} }`);

// ---------------------------------------------------------------------------------------------
// GraphQL variables, the typed path

/** A value in the JSON of `variables`: the type the schema wants, or another one. */
export const wrongJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -0, 2 ** 31, 2 ** 53 + 1, '', ' ', '1', 'x', [], {}, [1], { num1: '1' }),
  fc.integer().map((n) => n),
  fc.double({ noNaN: true }).map((n) => n),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.integer({ min: 10_000, max: 45_000 }).map((n) => 'w'.repeat(n)),
  fc.jsonValue({ maxDepth: 3 }),
);

export interface AddJobVariables {
  num1: unknown;
  num2: unknown;
  idempotencyKey?: unknown;
  runAt?: unknown;
  priority?: unknown;
  [extra: string]: unknown;
}

const runAt = fc.oneof(
  fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    '2030-01-01T00:00:00Z', '2030-01-01', '-271821-04-20T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', '-004714-11-23T00:00:00Z',
    '0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '+010000-01-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z',
    'tomorrow', '', '2030-13-01T00:00:00Z', '2030-02-30T00:00:00Z', '1', '2030-01-01T00:00:00+99:00', 'Sat, 01 Jan 2030 00:00:00 GMT',
  ),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
);

const nul = fc.constantFrom('a\u0000b', '\u0000', 'key\ud800', '\udfff', 'ok\ud83d\ude00');

/** Values for addJob's input: well-formed ones (with odd numbers) and every wrong type. */
export const addJobVariables: fc.Arbitrary<AddJobVariables> = fc.record(
  {
    num1: fc.oneof({ weight: 4, arbitrary: anyNumber }, { weight: 1, arbitrary: wrongJson }),
    num2: fc.oneof({ weight: 4, arbitrary: anyNumber }, { weight: 1, arbitrary: wrongJson }),
    idempotencyKey: fc.oneof(idempotencyKey, nul, wrongJson, fc.constant(null)),
    runAt: fc.oneof({ weight: 3, arbitrary: runAt }, { weight: 1, arbitrary: wrongJson }),
    priority: fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: -1100, max: 1100 }) },
      { weight: 1, arbitrary: fc.constantFrom(-1000, 1000, -1001, 1001, 0, -0, 2 ** 31 - 1, 2 ** 31, 1.5, '1', null) },
      { weight: 1, arbitrary: wrongJson },
    ),
    bogus: wrongJson,
  },
  { requiredKeys: [] },
) as fc.Arbitrary<AddJobVariables>;

// ---------------------------------------------------------------------------------------------
// Raw HTTP bodies for /graphql

const CONTENT_TYPES = [
  'application/json', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1',
  'application/json; charset=utf-16', 'application/graphql', 'application/graphql-response+json', 'text/plain',
  'application/x-www-form-urlencoded', 'multipart/form-data; boundary=XyZ', 'multipart/form-data', 'multipart/mixed',
  'text/event-stream', 'application/octet-stream', 'application/json;;;', '*/*', '',
];

export interface RawBody {
  body: string | Uint8Array;
  contentType: string;
  accept?: string;
}

const validBody = fc.oneof(
  fc.constant('{"query":"{ jobs { nodes { id } } }"}'),
  fc.constant('{"query":"mutation($i: AddJobInput!) { addJob(input: $i) { job { id } } }","variables":{"i":{"num1":"1","num2":"2"}}}'),
  fc.constant('{"query":"subscription { jobUpdated(id: \\"x\\") { id } }"}'),
  fc.constant('{"query":"{ __typename }","operationName":"Nope"}'),
);

const multipart = fc
  .tuple(fc.constantFrom('XyZ', 'other'), fc.string({ maxLength: 40 }), fc.json())
  .map(([boundary, junk, operations]) =>
    [`--${boundary}`, 'Content-Disposition: form-data; name="operations"', '', operations, `--${boundary}`, 'Content-Disposition: form-data; name="map"', '', junk, `--${boundary}--`].join('\r\n'),
  );

export const rawBody: fc.Arbitrary<RawBody> = fc.record(
  {
    contentType: fc.constantFrom(...CONTENT_TYPES),
    accept: fc.constantFrom('application/json', 'application/graphql-response+json', 'text/html', '*/*', 'text/plain', 'multipart/mixed', 'text/event-stream', 'application/xml'),
    body: fc.oneof(
      // Valid JSON cut short, or with junk around it.
      validBody.chain((json) => fc.integer({ min: 0, max: json.length - 1 }).map((n) => json.slice(0, n))),
      validBody.chain((json) => fc.constantFrom(`\ufeff${json}`, `${json}}`, `${json},`, `${json}\u0000`, `[${json},${json}]`, `[${json}]`, `${json}${json}`)),
      fc.constantFrom('', ' ', 'null', 'true', '1', '"x"', '[]', '{}', '{"query":null}', '{"query":1}', '{"query":{}}', '{"query":[]}', '{"query":"{ __typename }","variables":[]}',
        '{"query":"{ __typename }","variables":"{}"}', '{"query":"{ __typename }","extensions":1}', '{"query":"{ __typename }","operationName":[]}',
        "{'query':'{ __typename }'}", '{"query":"{ __typename }" /* c */}', '{"query":NaN}', '{"__proto__":{"query":"{ __typename }"}}',
        '{"query":"{ __typename }","query":"{ nope }"}', '{"documentId":"x"}', '{"query":"\\ud800"}', 'query={__typename}', '{ __typename }',
        'mutation { addJob(input: {num1: "1", num2: "1"}) { job { id } } }'),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.uint8Array({ maxLength: 60 }),
      fc.uint8Array({ maxLength: 20 }).map((bytes) => new Uint8Array([0x7b, 0x22, ...bytes])),
      multipart,
      // Bodies over the 50 kB limit, valid and not.
      fc.integer({ min: 50_001, max: 120_000 }).map((n) => JSON.stringify({ query: `{ __typename }${' '.repeat(n)}` })),
      fc.integer({ min: 50_001, max: 120_000 }).map((n) => JSON.stringify({ query: 'mutation($i: AddJobInput!) { addJob(input: $i) { job { id } } }', variables: { i: { num1: '1', num2: '1', pad: 'p'.repeat(n) } } })),
      fc.integer({ min: 50_001, max: 120_000 }).map((n) => `{"query":"${'{'.repeat(n)}`),
      fc.integer({ min: 50_001, max: 80_000 }).map((n) => new Uint8Array(n).fill(0xff)),
    ),
  },
  { requiredKeys: ['contentType', 'body'] },
);

// ---------------------------------------------------------------------------------------------
// graphql-ws frames

/** Stands for a real job's id in a frame; the test puts one in before sending. */
export const EXISTING_JOB = '$EXISTING_JOB';

type WsFrame = { text: string } | { bytes: Uint8Array; binary: boolean };
type WsStep = WsFrame | 'await-ack';

export interface WsCase {
  protocol: string | string[] | undefined;
  steps: WsStep[];
}

const text = (value: string): WsFrame => ({ text: value });
const json = (value: unknown): WsFrame => text(JSON.stringify(value));

const validInit = json({ type: 'connection_init' });

const subscribePayload = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(
    { query: `subscription { jobUpdated(id: "${EXISTING_JOB}") { id status } }` },
    { query: 'subscription { jobUpdated(id: "00000000-0000-4000-8000-000000000000") { id } }' },
    { query: 'subscription($id: ID!) { jobUpdated(id: $id) { id } }', variables: { id: 5 } },
    { query: 'subscription($id: ID!) { jobUpdated(id: $id) { id } }' },
    { query: '{ jobs(first: 2) { nodes { id status } } }' },
    { query: 'subscription { jobUpdated(id: "x") { id } } subscription B { jobUpdated(id: "y") { id } }' },
    { query: '{ __typename }', operationName: 'Nope' },
    { query: '{ __typename }', extensions: 'x' },
  ) },
  {
    weight: 2,
    arbitrary: addJobVariables.map((input) => ({
      query: `mutation($input: AddJobInput!) { addJob(input: $input) { created ${JOB_ID} } }`,
      variables: { input },
    })),
  },
  { weight: 3, arbitrary: anyDocument.map((query) => ({ query })) },
  { weight: 1, arbitrary: fc.record({ query: wrongJson, variables: wrongJson, operationName: wrongJson }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: wrongJson },
);

const frameId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('1', '2', '3') },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(2_000), '__proto__', 'constructor') },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1, null, true, {}, []) },
);

const frame: fc.Arbitrary<WsFrame> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ id: frameId, payload: subscribePayload }).map(({ id, payload }) => json({ id, type: 'subscribe', payload })) },
  { weight: 1, arbitrary: frameId.map((id) => json({ id, type: 'complete' })) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, {}, { x: 1 }, 'p', 1).map((payload) => json({ type: 'ping', payload })) },
  { weight: 1, arbitrary: fc.constantFrom('pong', 'next', 'error', 'connection_ack', 'start', 'stop', 'connection_terminate', 'ka', 'PING', '', 'subscribe ').map((type) => json({ id: '1', type, payload: {} })) },
  { weight: 1, arbitrary: fc.record({ type: wrongJson, id: wrongJson }, { requiredKeys: [] }).map(json) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>({ authorization: 'Bearer nope' }, { authorization: 5 }, 5, 'x', [], true).map((payload) => json({ type: 'connection_init', payload })) },
  { weight: 1, arbitrary: fc.constant(validInit) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom('', ' ', 'null', '[]', '"subscribe"', '{', '{"type":', '{"type":"ping"', '{"type":"ping"}}', "{'type':'ping'}", 'NaN', '\u0000'),
      fc.json().map((value) => value),
      fc.string({ maxLength: 40 }),
    ).map(text),
  },
  // Over maxMessageBytes (50 kB): ws closes the socket itself with 1009.
  { weight: 1, arbitrary: fc.integer({ min: 50_001, max: 90_000 }).map((n) => json({ id: '9', type: 'subscribe', payload: { query: `{ __typename }${' '.repeat(n)}` } })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ bytes, binary: true })) },
  { weight: 1, arbitrary: fc.constant({ bytes: new TextEncoder().encode('{"type":"ping"}'), binary: true }) },
  // Not UTF-8, sent as text: ws must refuse it (1007).
  { weight: 1, arbitrary: fc.constantFrom(new Uint8Array([0xff, 0xfe]), new Uint8Array([0x7b, 0xc0, 0xaf, 0x7d]), new Uint8Array([0xed, 0xa0, 0x80])).map((bytes) => ({ bytes, binary: false })) },
);

export const wsCase: fc.Arbitrary<WsCase> = fc.record({
  protocol: fc.oneof(
    { weight: 12, arbitrary: fc.constant('graphql-transport-ws') },
    { weight: 1, arbitrary: fc.constantFrom<string | string[] | undefined>(undefined, 'graphql-ws', 'junk', ['junk', 'graphql-transport-ws']) },
  ),
  steps: fc
    .tuple(
      fc.oneof(
        { weight: 5, arbitrary: fc.constant<WsStep[]>([validInit, 'await-ack']) },
        { weight: 1, arbitrary: fc.constant<WsStep[]>([validInit]) },
        { weight: 1, arbitrary: fc.constant<WsStep[]>([json({ type: 'connection_init', payload: { junk: 'x'.repeat(1000), nested: { a: [1, { b: null }] } } }), 'await-ack']) },
        { weight: 1, arbitrary: fc.constant<WsStep[]>([]) },
      ),
      fc.array(frame, { minLength: 1, maxLength: 5 }),
    )
    .map(([start, rest]) => [...start, ...rest]),
});

// ---------------------------------------------------------------------------------------------
// Subscriptions over HTTP

export interface HttpSubscriptionCase {
  /** A job id; EXISTING_JOB stands for a real job's. */
  id: string;
  /** The id written into the document, instead of sent as a variable. */
  inline: boolean;
  accept?: string;
}

export const httpSubscriptionCase: fc.Arbitrary<HttpSubscriptionCase> = fc.record(
  {
    id: fc.oneof(
      { weight: 4, arbitrary: fc.constant(EXISTING_JOB) },
      { weight: 2, arbitrary: fc.constantFrom('00000000-0000-4000-8000-000000000000', 'ffffffff-ffff-4fff-bfff-ffffffffffff') },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 2, arbitrary: fc.constantFrom('x', '', ' ', '0', 'null', `${EXISTING_JOB}0`, 'x'.repeat(300)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    ),
    inline: fc.boolean(),
    accept: fc.constantFrom(
      'text/event-stream', 'text/event-stream', 'TEXT/Event-Stream', 'application/json, text/event-stream',
      'text/event-stream; charset=utf-8', 'text/event-stream; charset=latin1', '*/*', 'application/json',
      'application/graphql-response+json', 'multipart/mixed', 'text/*', 'text/html',
    ),
  },
  { requiredKeys: ['id', 'inline'] },
);
