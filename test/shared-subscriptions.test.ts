import { type ExecutionResult, parse } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import type { WebSocketOperation } from '../src/graphql/builder.ts';
import { createSharedSubscriptionsPlugin } from '../src/graphql/shared-subscriptions.ts';

/**
 * The plugin on its own, over a schema whose subscription the test drives step by step: no
 * database is involved, the follower's two ways of delivering a result are what is tested.
 */
function harness() {
  const steps: Array<(value: { tick: number }) => void> = [];
  const schema = createSchema({
    typeDefs: /* GraphQL */ `
      type Query { ok: Boolean }
      type Subscription { tick: Int }
    `,
    resolvers: {
      Subscription: {
        tick: {
          subscribe: async function* () {
            for (;;) yield await new Promise<{ tick: number }>((resolve) => steps.push(resolve));
          },
          resolve: (payload: { tick: number }) => {
            if (payload.tick < 0) throw new Error('a resolver failed');
            return payload.tick;
          },
        },
      },
    },
  });
  const yoga = createYoga({ schema, plugins: [createSharedSubscriptionsPlugin()], logging: false });
  const document = parse('subscription { tick }');

  async function subscribe(webSocket?: WebSocketOperation) {
    const { subscribe: run, contextFactory } = yoga.getEnveloped({});
    const contextValue = Object.assign(await contextFactory(), { caller: { owner: 'someone' }, webSocketOperation: webSocket });
    const outcome = await run({ schema: yoga.getEnveloped({}).schema, document, contextValue });
    return (outcome as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
  }

  /** Makes the source yield, once the shared execution is waiting for it. */
  async function emit(tick: number) {
    await expect.poll(() => steps.length).toBeGreaterThan(0);
    steps.shift()!({ tick });
  }

  return { subscribe, emit };
}

function socketOperation(id: string) {
  const sent: unknown[] = [];
  const operation: WebSocketOperation = { id, send: (message) => sent.push(JSON.parse(message)) };
  return { operation, sent };
}

describe('shared subscriptions over graphql-ws', () => {
  it('send each result once as a graphql-ws next message, and yield nothing but the end', async () => {
    const { subscribe, emit } = harness();
    const first = socketOperation('1');
    const second = socketOperation('two');
    const a = await subscribe(first.operation);
    const b = await subscribe(second.operation);
    await emit(1);
    await expect.poll(() => second.sent.length).toBe(1);
    expect(first.sent).toEqual([{ id: '1', type: 'next', payload: { data: { tick: 1 } } }]);
    expect(second.sent).toEqual([{ id: 'two', type: 'next', payload: { data: { tick: 1 } } }]);

    // A newcomer starts from the latest result, sent the same way.
    const third = socketOperation('3');
    const c = await subscribe(third.operation);
    expect(third.sent).toEqual([{ id: '3', type: 'next', payload: { data: { tick: 1 } } }]);

    const ends = [a, b, c].map((follower) => follower.next());
    await emit(2);
    await expect.poll(() => third.sent.length).toBe(2);
    for (const follower of [a, b, c]) await follower.return!();
    expect(await Promise.all(ends)).toEqual([
      { value: undefined, done: true },
      { value: undefined, done: true },
      { value: undefined, done: true },
    ]);
  });

  it('hand a result with errors to graphql-ws, masked, and everything after it too', async () => {
    const { subscribe, emit } = harness();
    const direct = socketOperation('1');
    const follower = await subscribe(direct.operation);
    await emit(1);
    await expect.poll(() => direct.sent.length).toBe(1);

    const failed = follower.next();
    await emit(-1);
    const { value } = await failed;
    expect(value?.data).toEqual({ tick: null });
    expect(value?.errors?.[0]?.message).toBe('Unexpected error.');

    // Sent directly now, it could overtake the failed result still on its way through graphql-ws.
    const after = follower.next();
    await emit(3);
    expect((await after).value).toEqual({ data: { tick: 3 } });
    expect(direct.sent).toHaveLength(1);
    await follower.return!();
  });

  it('leave SSE subscribers, which have no socket, to the iterator', async () => {
    const { subscribe, emit } = harness();
    const follower = await subscribe();
    const first = follower.next();
    await emit(5);
    expect((await first).value).toEqual({ data: { tick: 5 } });
    await follower.return!();
  });
});
