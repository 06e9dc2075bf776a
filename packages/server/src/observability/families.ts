/**
 * Minimal metric families that plug into a prom-client `Registry` (which only needs `name`, `help`, `type` and
 * `get()`). The hot path updates plain numbers on cells the caller keeps (`cell.value++`): no label hashing, no
 * allocation per request; prom-client does the text formatting at scrape time.
 */

type Labels = Record<string, string>;

interface MetricValue {
  value: number;
  labels: Labels;
  metricName?: string;
}

interface MetricObject {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** A counter (or gauge) series. */
export interface Cell {
  readonly labels: Labels;
  value: number;
}

/** A histogram series: non-cumulative bucket counts (cumulated at scrape), sum and count. */
export interface HistCell {
  readonly labels: Labels;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

abstract class Family<C> {
  readonly series = new Map<string, C>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract make(labels: Labels): C;

  /** The series of these label values, created on first use. Callers cache the returned cell. */
  cell(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.series.get(key);
    if (!c) {
      const labels: Labels = {};
      for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]] = values[i];
      c = this.make(labels);
      this.series.set(key, c);
    }
    return c;
  }

  /** Drops every series whose `label` equals `value` (an endpoint removed by a reload). */
  drop(label: string, value: string): void {
    for (const [k, c] of this.series)
      if ((c as { labels: Labels }).labels[label] === value) this.series.delete(k);
  }
}

export class CounterFamily extends Family<Cell> {
  readonly type: 'counter' | 'gauge';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    type: 'counter' | 'gauge' = 'counter',
  ) {
    super(name, help, labelNames);
    this.type = type;
  }

  protected make(labels: Labels): Cell {
    return { labels, value: 0 };
  }

  get(): MetricObject {
    const values: MetricValue[] = [];
    for (const c of this.series.values()) values.push({ value: c.value, labels: c.labels });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }
}

/** A gauge recomputed at every scrape by `fill` (from `router.snapshot()`). */
export class SnapshotGauge {
  readonly type = 'gauge';
  values: MetricValue[] = [];
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  get(): MetricObject {
    return { name: this.name, help: this.help, type: 'gauge', values: this.values, aggregator: 'sum' };
  }
}

export class HistogramFamily extends Family<HistCell> {
  readonly type = 'histogram';
  readonly #le: string[];
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    this.#le = buckets.map(String);
  }

  protected make(labels: Labels): HistCell {
    return { labels, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
  }

  /** Records `v` (seconds) in `c`. */
  observe(c: HistCell, v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    if (i < b.length) c.counts[i]++;
    c.sum += v;
    c.count++;
  }

  get(): MetricObject {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += c.counts[i];
        values.push({ metricName: bucket, labels: { ...c.labels, le: this.#le[i] }, value: acc });
      }
      values.push({ metricName: bucket, labels: { ...c.labels, le: '+Inf' }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  /** A quantile estimate (ms) over every series, by linear interpolation inside the bucket. */
  static quantileMs(cells: Iterable<HistCell>, buckets: readonly number[], q: number): number | undefined {
    const counts = new Float64Array(buckets.length);
    let total = 0;
    for (const c of cells) {
      for (let i = 0; i < buckets.length; i++) counts[i] += c.counts[i];
      total += c.count;
    }
    if (total === 0) return undefined;
    const rank = q * total;
    let acc = 0;
    for (let i = 0; i < buckets.length; i++) {
      if (acc + counts[i] >= rank && counts[i] > 0) {
        const lo = i === 0 ? 0 : buckets[i - 1];
        return (lo + ((buckets[i] - lo) * (rank - acc)) / counts[i]) * 1000;
      }
      acc += counts[i];
    }
    return buckets[buckets.length - 1] * 1000;
  }
}
