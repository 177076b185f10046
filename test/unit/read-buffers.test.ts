// A large body's socket reads are freed while it arrives (read-buffers.ts): readBody copies each
// read into the body's own buffer, and a minor collection every RELEASE_EVERY_BYTES frees the reads
// copied so far. Without it nothing made V8 collect during an upload: every read of a 10 MB body
// stayed resident until the call was over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { readBody, type ScannedBody } from '../../src/agent-extension/request-body.js';
import { RELEASE_EVERY_BYTES, releaseReadBuffers } from '../../src/agent-extension/read-buffers.js';

const limits = { maxParams: 4, maxValues: 100, maxElements: 1000, maxMulticallCalls: 3, callBodyLimit: 64 * 1024, fileBodyLimit: 16 << 20, baseTimeoutMs: 10_000, minBytesPerS: 1 << 20 };
const turn = () => new Promise((r) => setImmediate(r));

const arrayBuffers = () => process.memoryUsage().arrayBuffers;

test('a 12 MiB upload arriving in 64 KiB reads: the reads copied so far are freed while it arrives (at most the body and 2 × 2 MiB of reads held), and the body is whole', async () => {
  const head = '<?xml version="1.0"?><methodCall><methodName>ovs_upload_file</methodName><params><param><value><string>';
  const tail = '</string></value></param></params></methodCall>';
  const textBytes = 12 << 20;
  const total = head.length + textBytes + tail.length;
  const READ = 64 * 1024;
  const body = Buffer.alloc(total, 0x61);
  body.write(head, 0, 'latin1');
  body.write(tail, total - tail.length, 'latin1');
  const payload = new Readable({ read() {} });
  let result: ScannedBody | undefined;
  let error: unknown;
  readBody(payload, total, limits, (m) => (m === 'ovs_upload_file' ? limits.fileBodyLimit : limits.callBodyLimit), (err, b) => {
    error = err;
    result = b as ScannedBody;
  });
  const base = arrayBuffers();
  let peak = 0;
  for (let at = 0; at < total; at += READ) {
    // Each read a buffer of its own, as Node's socket reads are; nothing here keeps one.
    const read = Buffer.allocUnsafeSlow(Math.min(READ, total - at));
    body.copy(read, 0, at, at + read.length);
    payload.push(read);
    peak = Math.max(peak, arrayBuffers() - base);
    await turn();
  }
  payload.push(null);
  for (let i = 0; i < 20 && !result && !error; i++) await turn();
  assert.equal(error, null);
  assert.ok(result, 'the body was read');
  assert.ok(result.buf.equals(body), 'the body is whole and unchanged');
  assert.equal(result.method, 'ovs_upload_file');
  // Held: the body's own buffer (its size) and the reads since the last collection (under
  // RELEASE_EVERY_BYTES, plus the read being copied). Without the collections, every read: twice the body.
  const bound = total + 2 * RELEASE_EVERY_BYTES;
  assert.ok(peak <= bound, `${(peak / 1048576).toFixed(1)} MiB of buffers held while a ${(total / 1048576).toFixed(1)} MiB body arrived; bound ${(bound / 1048576).toFixed(1)} MiB`);
});

test("releaseReadBuffers: a minor collection frees unreachable young buffers, and brick's context gets no gc global", () => {
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the test runs without --expose-gc');
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const pause = (ms: number) => Atomics.wait(cell, 0, 0, ms);
  // Start from a settled count: the test before left buffers that a collection (one V8 starts on
  // its own when external memory grows, or a background sweep finishing) could free while this
  // one counts. A full collection in a context of the test's own (the flag is set by the first
  // use), then wait until the count holds still. Without it the count fell under the 4 MiB just
  // allocated (CI, 2 Dec): something else was freed between the two reads.
  releaseReadBuffers();
  const fullGc = runInNewContext('gc') as () => void;
  fullGc();
  let last = -1;
  for (let waited = 0; arrayBuffers() !== last && waited < 3000; waited += 20) {
    last = arrayBuffers();
    pause(20);
  }
  const before = arrayBuffers();
  (() => {
    // Held while counted, so no collection V8 starts by itself can free them before the count.
    const held: Buffer[] = [];
    for (let i = 0; i < 64; i++) held.push(Buffer.allocUnsafeSlow(64 * 1024).fill(1));
    assert.ok(arrayBuffers() - before >= 4 << 20, `the 4 MiB are counted until a collection (${arrayBuffers() - before} bytes counted)`);
  })();
  releaseReadBuffers();
  // V8 frees the dead buffers' memory on a background thread after the collection (concurrent
  // array buffer sweeping): wait for it blocked in Atomics.wait. Reading the count allocates a few
  // bytes a time, far too little to fill the young generation the collection just emptied, so no
  // other collection can be what freed them. Counted at once, this lost the race on a loaded machine.
  let waitedMs = 0;
  while (arrayBuffers() - before >= 1 << 20 && waitedMs < 3000) {
    pause(5);
    waitedMs += 5;
  }
  assert.ok(arrayBuffers() - before < 1 << 20, `${arrayBuffers() - before} bytes still held ${waitedMs} ms after the collection`);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'still no gc global after the first use');
});
