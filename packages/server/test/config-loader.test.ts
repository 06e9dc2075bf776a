import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fakeKey } from '@lb/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { startupConfig } from '../src/config.js';
import { LOADER_FLAG, type LoaderAnswer, type LoaderJob, runLoaderJob } from '../src/config-loader.js';

// The config loader is a real module (src/config-loader.ts, built as dist/config-loader.js): the job it runs, in
// process and in the child process lb-server starts it in.
const key = fakeKey('loader');
const cwd = mkdtempSync(join(tmpdir(), 'lb-loader-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));
const built = fileURLToPath(new URL('../dist/config-loader.js', import.meta.url));

function inChild(
  job: LoaderJob,
  env: NodeJS.ProcessEnv,
  args: string[] = [LOADER_FLAG],
): Promise<{ answer?: LoaderAnswer; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [built, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    let answer: LoaderAnswer | undefined;
    child.once('message', (m: LoaderAnswer) => {
      answer = m;
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ answer, code }));
    child.send(job);
  });
}

describe('the config loader module', () => {
  it('answers whether anything is configured, and loads only then', async () => {
    expect(await runLoaderJob({ present: true, load: true, cwd }, {})).toEqual({ present: false });
    const a = await runLoaderJob({ present: true, load: true, cwd }, { OPENAI_API_KEY: key, PORT: '9001' });
    expect(a.present).toBe(true);
    expect(a.error).toBeUndefined();
    expect(a.config?.server.port).toBe(9001);
    expect(a.config?.router.endpoints[0].apiKey).toBe(key);
  });

  it('answers a config error as plain data: every problem with its path, never the key', async () => {
    const a = await runLoaderJob({ load: true, cwd }, { OPENAI_API_KEY: key, PORT: 'eighty' });
    expect(a.config).toBeUndefined();
    expect(a.error?.name).toBe('ConfigValidationError');
    expect(a.error?.errors?.map((i) => i.path)).toContain('PORT');
    expect(JSON.stringify(a.error)).not.toContain(key);
  });

  it('answers the server settings from the environment alone (the demo), its defaults under the environment', async () => {
    const a = await runLoaderJob({ cwd, settings: { LOG_LEVEL: 'warn' } }, { PORT: '9002' });
    expect(a.settings).toMatchObject({ port: 9002, host: '127.0.0.1', logLevel: 'warn' });
    const b = await runLoaderJob({ cwd, settings: { LOG_LEVEL: 'warn' } }, { LOG_LEVEL: 'debug' });
    expect(b.settings?.logLevel).toBe('debug');
    const c = await runLoaderJob({ cwd, settings: {} }, { HOST: '' });
    expect(c.settings?.host).toBe('127.0.0.1');
  });

  it('knows the strategies of @lb/spend a config may name', async () => {
    const file = join(cwd, 'cheapest.toml');
    writeFileSync(
      file,
      `strategy = "cheapest"\n[[endpoints]]\nname = "a"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "${key}"\n`,
    );
    const a = await runLoaderJob({ load: true, file, cwd }, {});
    expect(a.error).toBeUndefined();
    expect(a.config?.router.strategy).toBe('cheapest');
  });

  it('starts nothing without its flag: run with an IPC channel, it answers no job and exits on its own', async () => {
    const r = await inChild({ present: true, cwd }, { PATH: process.env.PATH, OPENAI_API_KEY: key }, []);
    expect(r).toEqual({ answer: undefined, code: 0 });
  });

  it('runs built, in a child process: one job, one answer on the IPC channel, then it exits 0', async () => {
    expect(existsSync(built)).toBe(true);
    const r = await inChild(
      { present: true, load: true, cwd },
      { PATH: process.env.PATH, OPENAI_API_KEY: key },
    );
    expect(r.code).toBe(0);
    expect(r.answer?.present).toBe(true);
    expect(r.answer?.config?.server.http2).toBe(true);
    expect(r.answer?.config?.server.connectionsPerOrigin).toBeNull();
  });

  it('is what startupConfig runs (the built loader, from source too)', async () => {
    const none = await startupConfig({ cwd, env: { PATH: process.env.PATH } });
    expect(none).toEqual({ present: false, config: undefined });
    const bad = await startupConfig({
      cwd,
      env: { PATH: process.env.PATH, OPENAI_API_KEY: key, PORT: '-1' },
    });
    expect(bad.present).toBe(true);
    expect((bad.error as { errors?: { path: string }[] }).errors?.[0].path).toBe('PORT');
    const ok = await startupConfig({
      cwd,
      env: { PATH: process.env.PATH, UPSTREAM_URL: 'http://127.0.0.1:9/v1' },
    });
    expect(ok.config?.router.endpoints.map((e) => e.id)).toEqual(['upstream']);
  });
});
