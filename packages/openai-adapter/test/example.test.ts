import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { nodeStartMs, pacedTimeout } from '@lb/testing';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');
// The example runs in a node process of its own: the time limit follows how long node takes to start now.
const SPAWN_TIMEOUT = pacedTimeout(nodeStartMs(), 10);

describe('examples/drop-in-client', () => {
  it('runs the official SDK over two local endpoints: fails over and says which endpoint answered', {
    timeout: SPAWN_TIMEOUT,
  }, () => {
    const out = execFileSync(process.execPath, ['index.mjs'], {
      cwd: path.join(root, 'examples/drop-in-client'),
      encoding: 'utf8',
      timeout: SPAWN_TIMEOUT,
    });
    expect(out).toContain('attempt 1 on primary failed: server 500');
    expect(out).toContain('hello from backup (x-lb-endpoint: backup, x-lb-attempts: 2)');
    expect(out).toContain('streamed: hello from backup');
    expect(out).toContain('key=sk-proj...N0IA');
    expect(out).not.toContain('example-primary-key');
    expect(out).not.toContain('example-backup-key');
  });
});
