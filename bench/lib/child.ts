/** The process `runIsolated` starts: runs one exported function, sends back its result, exits. */
process.once('message', async (message: { module: string; name: string; args: unknown }) => {
  try {
    const loaded = (await import(message.module)) as Record<string, (args: unknown) => Promise<unknown>>;
    const run = loaded[message.name];
    if (typeof run !== 'function') throw new Error(`${message.module} exports no function ${message.name}`);
    const value = await run(message.args);
    process.send!({ ok: true, value }, () => process.exit(0));
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.send!({ ok: false, error: text }, () => process.exit(1));
  }
});
