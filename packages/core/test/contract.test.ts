// The built-in strategies run the public contract as a plugin's would: through the built package (`@lb/core`, the
// package's own name), as `@lb/testing` sees it.
import { leastBusy, leastLatency, priority, randomStrategy, roundRobin, weightedRandom } from '@lb/core';
import { runStrategyContract } from '@lb/testing';

const random = Math.random;
runStrategyContract({ name: 'priority', create: () => priority({ random }) });
runStrategyContract({ name: 'round-robin', create: () => roundRobin({ random }) });
runStrategyContract({ name: 'weighted-random', create: () => weightedRandom({ random }) });
runStrategyContract({ name: 'random', create: () => randomStrategy({ random }) });
runStrategyContract({ name: 'least-latency', create: () => leastLatency({ random, explorationRate: 0.5 }) });
runStrategyContract({ name: 'least-busy', create: () => leastBusy({ random }) });
runStrategyContract({
  name: 'user plugin "first"',
  create: () => ({ name: 'first', pick: (c) => c[0] }),
  spreads: false,
});
