// The single executable's main script (scripts/build-binary.mjs): runs one of the two bundles the
// binary carries as assets, with the code cache made for it at build time.
//   brick fencer ...   -> fencer.js: src/cli/main.ts without the other commands' modules (341 KiB
//                         instead of 1.4 MB: the fencer does not hold the agent's source and its
//                         parse in its heap, nor touch its pages in the binary: about 6 MB less RSS
//                         when measured against the 1.8 MB whole CLI of then)
//   anything else      -> brick.js: the whole CLI
// Each asset is the bundle wrapped as one function expression (CommonJS's own wrapper), so V8
// compiles it with its cache as the SEA would compile a main script. Nothing here reads the
// environment: argv[2] is the command, as src/cli/main.ts reads it.
'use strict';
const { getRawAsset } = require('node:sea');
const { Script } = require('node:vm');

const role = process.argv[2] === 'fencer' ? 'fencer' : 'brick';
const script = new Script(Buffer.from(getRawAsset(`${role}.js`)).toString('latin1'), {
  filename: `${role}.cjs`,
  cachedData: Buffer.from(getRawAsset(`${role}.cache`)),
});
script.runInThisContext()(module.exports, require, module, __filename, __dirname);
