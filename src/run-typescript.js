// Preloaded by `npm start` (node --import ./src/run-typescript.js src/main.ts) so one command
// runs the TypeScript sources on every supported Node. Node >= 22.18 strips the types itself
// (process.features.typescript is 'strip'), and nothing more is loaded; older Nodes get tsx's
// loader, exactly as `node --import tsx` would register it. JavaScript, not TypeScript: it must
// run before anything can read TypeScript.
if (!process.features.typescript) await import('tsx');
