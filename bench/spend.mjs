// `@lb/spend` micro-benchmark (see lib/spend.mjs): node bench/spend.mjs [--n=200000] [--rounds=5]
import { runSpendBench } from './lib/spend.mjs';

const arg = (name, d) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : d;
};
const n = arg('n', 200_000);
const rounds = arg('rounds', 5);
const rows = runSpendBench({ n, rounds });
console.log(`@lb/spend micro-benchmark — node ${process.version}, ${n} calls × ${rounds} rounds, medians\n`);
console.log('| what | CPU ns per call | bytes per call |');
console.log('| --- | ---: | ---: |');
for (const r of rows) console.log(`| ${r.what} | ${r.ns} | ${r.bytes} |`);
