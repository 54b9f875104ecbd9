import { describe, expect, it, vi } from 'vitest';

// readEvents() parses a byte stream; the JupyterLab request helpers are not used by it.
vi.mock('@jupyterlab/coreutils', () => ({ URLExt: {} }));
vi.mock('@jupyterlab/services', () => ({ ServerConnection: {} }));

import { readEvents } from '../src/api';

function body(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      chunks.forEach(s => c.enqueue(enc.encode(s)));
      c.close();
    }
  });
}

describe('readEvents (Server-Sent Events)', () => {
  it('gives each event once, whatever the chunking', async () => {
    const got: string[] = [];
    await readEvents(body(['data: {"a":', '1}\n', '\ndata: {"a":2}\n\ndata:', '{"a":3}\r\n\r\n: comment\n\n']), d => got.push(d));
    expect(got.map(d => JSON.parse(d).a)).toEqual([1, 2, 3]);
  });
  it('joins the data lines of one event and leaves an unfinished one out', async () => {
    const got: string[] = [];
    await readEvents(body(['event: x\ndata: one\ndata: two\n\ndata: cut']), d => got.push(d));
    expect(got).toEqual(['one\ntwo']);
  });
  it('refuses an event over the limit', async () => {
    await expect(readEvents(body(['data: ' + 'x'.repeat(100)]), () => undefined, 50)).rejects.toThrow(/over 50/);
  });
});
