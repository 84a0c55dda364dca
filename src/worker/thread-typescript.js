// Preloaded into each ThreadPool thread (execArgv --import) on Node 20, which gives every thread
// module hooks of its own: the hooks `npm start` registers on the main thread (src/run-typescript.js)
// do not reach a thread, and tsx's own --import entry registers its ESM hooks on the main thread
// only. tsx's API registers them here, so the thread imports TypeScript like the main thread.
// JavaScript, not TypeScript: it must run before anything can read TypeScript.
import { register } from 'tsx/esm/api';

register();
