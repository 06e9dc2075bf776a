#!/usr/bin/env node
// A/B of two lb-server builds against the same upstream and the bare pass-through, interleaved (same conditions):
// max RPS + CPU µs/req at c=32, one-in-flight added latency, stream TTFT, idle RSS.
//   node bench/ab.mjs <cli A> <cli B> [--rounds=3] [--seconds=5] [--profile]   (e.g. a copy of dist/ taken before a change)
//   node bench/ab.mjs <cli A> <cli B> --streams [--n=300] [--rounds=3] [--chunks=20 --interval=2]   (stream TTFT and
//     chunk gaps only, fresh servers per round; --chunks=1 --interval=0: streams back to back, every process warm)
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  freePort,
  layout,
  maxRps,
  maxRpsRounds,
  oneInFlight,
  pacedArgs,
  pinSelf,
  STREAM_SHAPE,
  spawnNode,
  streaming,
} from './lib/harness.mjs';
import { topSelf } from './lib/profile.mjs';
import { lbEnv, ROOT } from './lib/proxy.mjs';
import { median, round, sleep } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => Number(argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d);
const [cliA, cliB] = argv.filter((a) => !a.startsWith('--'));
const roundsN = opt('rounds', 3);
const seconds = opt('seconds', 5);
const profile = argv.includes('--profile');
const streamsOnly = argv.includes('--streams');
const streamN = opt('n', 300);
const chunks = opt('chunks', STREAM_SHAPE.chunks);
const intervalMs = opt('interval', STREAM_SHAPE.intervalMs);
pinSelf();
const here = join(ROOT, 'bench', 'lib');
const procs = [];
const start = async (p) => {
  const x = await p;
  procs.push(x);
  return x;
};
const lb = async (cli, up, nodeArgs = []) => {
  const port = await freePort();
  const p = await start(
    spawnNode(cli, ['--port', String(port)], {
      core: layout.serverCore,
      env: lbEnv([up, up, up]),
      nodeArgs,
      readyUrl: `http://127.0.0.1:${port}/healthz`,
    }),
  );
  return { pid: p.pid, url: `http://127.0.0.1:${port}/v1`, proc: p };
};
try {
  const up = await start(spawnNode(join(here, 'upstream.mjs'), [], { core: layout.clientCore }));
  const paced = await start(
    spawnNode(join(here, 'upstream.mjs'), pacedArgs({ chunks, intervalMs }), { core: layout.clientCore }),
  );
  const upUrl = `http://127.0.0.1:${up.port}/v1`;
  const pacedUrl = `http://127.0.0.1:${paced.port}/v1`;
  const bare = await start(
    spawnNode(join(here, 'bare-proxy.mjs'), [`http://127.0.0.1:${up.port}`], { core: layout.serverCore }),
  );
  const bareT = { name: 'undici-bare', url: `http://127.0.0.1:${bare.port}/v1`, pid: bare.pid };
  if (streamsOnly) {
    // Rounds of interleaved streams, fresh A and B each round (started in alternating order): TTFT added over direct.
    const bareS = await start(
      spawnNode(join(here, 'bare-proxy.mjs'), [`http://127.0.0.1:${paced.port}`], {
        core: layout.serverCore,
      }),
    );
    const acc = { 'undici-bare': [], A: [], B: [] };
    for (let r = 0; r < roundsN; r++) {
      const order = r % 2 === 0 ? [cliA, cliB] : [cliB, cliA];
      const first = await lb(order[0], pacedUrl);
      const second = await lb(order[1], pacedUrl);
      const [a, b] = r % 2 === 0 ? [first, second] : [second, first];
      const s = await streaming(
        [
          { name: 'direct', url: pacedUrl },
          { name: 'undici-bare', url: `http://127.0.0.1:${bareS.port}/v1` },
          { name: 'A', url: a.url },
          { name: 'B', url: b.url },
        ],
        { n: streamN, warmup: 30, warmS: opt('warm', 4) },
      );
      for (const x of s.slice(1))
        acc[x.name].push({
          p50: x.ttftP50Us - s[0].ttftP50Us,
          p99: x.ttftP99Us - s[0].ttftP99Us,
          gap: x.gapP50Us - s[0].gapP50Us,
        });
      console.log(
        `round ${r + 1}: TTFT added p50 ${s
          .slice(1)
          .map((x) => `${x.name} ${round(x.ttftP50Us - s[0].ttftP50Us)}`)
          .join(', ')}`,
      );
      await a.proc.stop();
      await b.proc.stop();
    }
    for (const [name, xs] of Object.entries(acc))
      console.log(
        `${name.padEnd(12)} TTFT added p50 ${round(median(xs.map((x) => x.p50)))} (${xs.map((x) => round(x.p50)).join(' ')})  p99 ${round(median(xs.map((x) => x.p99)))}  gap ${round(median(xs.map((x) => x.gap)))}`,
      );
  } else {
    // Fresh A and B every round (see `maxRpsRounds`): a fixed layout would credit the VM's ordering bias to one build.
    const rounds = await maxRpsRounds(
      [bareT, { name: 'A', start: () => lb(cliA, upUrl) }, { name: 'B', start: () => lb(cliB, upUrl) }],
      { rounds: roundsN, durationS: seconds },
    );
    const rps = rounds.map((x) => x.runs.map((m) => m.rps));
    const cpu = rounds.map((x) => x.runs.map((m) => m.cpuUsPerReq));
    const idle = rounds.slice(1).map((x) => `${x.name} ${x.idleMB} MB`);
    const steady = rounds.map((x) => `${x.name} ${x.steadyMB} MB`);
    const targets = [
      bareT,
      { name: 'A', ...(await lb(cliA, upUrl)) },
      { name: 'B', ...(await lb(cliB, upUrl)) },
    ];
    const one = await oneInFlight([{ name: 'direct', url: upUrl }, ...targets], { n: 2000, warmup: 300 });
    const bareS = await start(
      spawnNode(join(here, 'bare-proxy.mjs'), [`http://127.0.0.1:${paced.port}`], {
        core: layout.serverCore,
      }),
    );
    const s = await streaming(
      [
        { name: 'direct', url: pacedUrl },
        { name: 'undici-bare', url: `http://127.0.0.1:${bareS.port}/v1` },
        { name: 'A', url: (await lb(cliA, pacedUrl)).url },
        { name: 'B', url: (await lb(cliB, pacedUrl)).url },
      ],
      { n: 300, warmup: 30 },
    );
    console.log('idle RSS', idle.join(', '), '| steady', steady.join(', '));
    for (let j = 0; j < targets.length; j++) {
      const o = one[j + 1];
      const st = s[j + 1];
      console.log(
        `${targets[j].name.padEnd(12)} rps ${median(rps[j])} (${rps[j].join(' ')}) ofBare ${round(median(rps[j]) / median(rps[0]), 2)}  cpu µs/req ${round(median(cpu[j]))} (${cpu[j].map((x) => round(x)).join(' ')})` +
          `  1-in-flight added p50/p99 ${round(o.p50Us - one[0].p50Us)}/${round(o.p99Us - one[0].p99Us)}` +
          `  TTFT added p50/p99 ${round(st.ttftP50Us - s[0].ttftP50Us)}/${round(st.ttftP99Us - s[0].ttftP99Us)} gap ${round(st.gapP50Us - s[0].gapP50Us)}`,
      );
    }
    if (profile) {
      const dir = join(ROOT, 'bench', 'results', 'prof');
      mkdirSync(dir, { recursive: true });
      const before = new Set(readdirSync(dir));
      const p = await lb(cliB, upUrl, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
      await maxRps(p, { connections: 32, durationS: seconds });
      await p.proc.stop();
      await sleep(200);
      const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'));
      if (file)
        for (const x of topSelf(join(dir, file), 30))
          console.log(`${String(x.selfPct).padStart(5)}%  ${x.fn}  ${x.where}`);
    }
  }
} finally {
  for (const p of procs.reverse()) await p.stop();
}
