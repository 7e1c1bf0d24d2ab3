// The part of autocannon 8 (no bundled types) that bench/serve.ts uses.
declare module "autocannon" {
  namespace autocannon {
    interface Options {
      url: string;
      method?: string;
      headers?: Record<string, string>;
      body?: string;
      connections?: number;
      duration?: number;
      timeout?: number;
    }
    interface Histogram {
      p50: number;
      p99: number;
      average: number;
    }
    interface Result {
      "2xx": number;
      non2xx: number;
      errors: number;
      timeouts: number;
      duration: number;
      latency: Histogram;
      requests: Histogram & { total: number };
    }
  }
  function autocannon(o: autocannon.Options, cb: (e: Error | null, r: autocannon.Result) => void): unknown;
  export default autocannon;
}
