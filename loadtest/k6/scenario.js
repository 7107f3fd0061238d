// Generic k6 script: runs any scenario file of loadtest/scenarios — the same
// files `loadgen` runs — mapping its executor, request, expected statuses,
// thresholds and HTTP actions to k6.
//
//   k6 run -e SCENARIO=load -e TARGET=http://127.0.0.1:8080 loadtest/k6/scenario.js
//   k6 run -e SCENARIO=/abs/path/my.json -e ADMIN=http://127.0.0.1:9901 loadtest/k6/scenario.js
//
// SCENARIO is a scenario name (loadtest/scenarios/NAME.json) or a path;
// open() resolves relative paths from this script's directory.
// TARGET overrides the scenario's target. ADMIN is {{admin}} in action URLs.
// Signal and start actions (kill or restart a process) need the stack
// runner: `loadgen -stack`; here they are skipped with a warning.
//
// The mapping of thresholds (see loadtest/threshold.go for the grammar):
//   pNN, p99.9, min, med, avg, max  -> http_req_duration{scenario:main}: p(NN)<ms ...
//   error_rate                      -> http_req_failed{scenario:main}: rate<x
//   failed                          -> failed_requests: count<x
//   dropped                         -> dropped_iterations: count<x
//   rps, requests                   -> http_reqs{scenario:main}: rate / count
//   dropped_rate                    -> not expressible in k6: skipped with a warning
import http from 'k6/http';
import { Counter } from 'k6/metrics';

const name = __ENV.SCENARIO || 'smoke';
const file = name.indexOf('/') >= 0 || name.endsWith('.json') ? name : `../scenarios/${name}.json`;
const sc = JSON.parse(open(file));
const target = (__ENV.TARGET || sc.target || 'http://127.0.0.1:8080').replace(/\/$/, '');
const paths = sc.paths && sc.paths.length ? sc.paths : ['/'];
const method = sc.method || 'GET';
const body = sc.body_size ? 'x'.repeat(sc.body_size) : sc.body || null;
const vars = { target, admin: __ENV.ADMIN || 'http://127.0.0.1:9901' };

const failedRequests = new Counter('failed_requests');

// expected is the statuses counted as success: sc.expect, or 200..399.
const expected = sc.expect && sc.expect.length ? sc.expect : null;
http.setResponseCallback(expected ? http.expectedStatuses(...expected) : http.expectedStatuses({ min: 200, max: 399 }));

// duration returns a Go duration string ("1m30s", "250ms") as k6 accepts it.
function duration(d) {
  return String(d).replace(/µs|us/g, 'us');
}

// millis converts a threshold value (a duration or bare milliseconds) to ms.
function millis(v) {
  if (/^[0-9.]+$/.test(v)) return Number(v);
  const units = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  const re = /([0-9.]+)(ns|us|µs|ms|s|m|h)/g;
  let m;
  while ((m = re.exec(v)) !== null) total += Number(m[1]) * units[m[2]];
  return total;
}

// executor maps the scenario's executor to a k6 scenario named "main".
function executor() {
  const pre = sc.pre_allocated_vus || 10;
  const vus = { preAllocatedVUs: pre, maxVUs: Math.max(sc.max_vus || pre, pre) };
  switch (sc.executor) {
    case 'constant-arrival-rate':
      return Object.assign({ executor: sc.executor, rate: Math.round(sc.rate), timeUnit: '1s', duration: duration(sc.duration) }, vus);
    case 'ramping-arrival-rate':
      return Object.assign({
        executor: sc.executor, startRate: Math.round(sc.start_rate || 0), timeUnit: '1s',
        stages: sc.stages.map((s) => ({ duration: duration(s.duration), target: Math.round(s.target) })),
      }, vus);
    case 'constant-vus':
      if (sc.iterations > 0) {
        return { executor: 'shared-iterations', vus: sc.vus, iterations: sc.iterations, maxDuration: duration(sc.duration) };
      }
      return { executor: 'constant-vus', vus: sc.vus, duration: duration(sc.duration) };
  }
  throw new Error(`scenario ${file}: executor ${sc.executor}: want constant-arrival-rate, ramping-arrival-rate or constant-vus`);
}

// threshold maps one "metric op value" string to [k6 metric, k6 expression].
function threshold(expr) {
  const m = /^\s*([a-zA-Z_]+(?:\([0-9.]+\))?|p[0-9.]+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$/.exec(expr);
  if (!m) throw new Error(`threshold ${expr}: want "metric op value"`);
  let metric = m[1].toLowerCase();
  const op = m[2];
  const value = m[3];
  const pm = /^p\(?([0-9.]+)\)?$/.exec(metric);
  if (pm) return ['http_req_duration{scenario:main}', `p(${pm[1] === '999' ? '99.9' : pm[1]})${op}${millis(value)}`];
  switch (metric) {
    case 'min': case 'max': case 'avg': case 'med':
      return ['http_req_duration{scenario:main}', `${metric}${op}${millis(value)}`];
    case 'mean':
      return ['http_req_duration{scenario:main}', `avg${op}${millis(value)}`];
    case 'error_rate':
      return ['http_req_failed{scenario:main}', `rate${op}${value}`];
    case 'failed':
      return ['failed_requests', `count${op}${value}`];
    case 'dropped':
      return ['dropped_iterations', `count${op}${value}`];
    case 'rps':
      return ['http_reqs{scenario:main}', `rate${op}${value}`];
    case 'requests':
      return ['http_reqs{scenario:main}', `count${op}${value}`];
  }
  console.warn(`threshold ${expr}: no k6 equivalent; skipped`);
  return null;
}

function thresholds() {
  const out = {};
  for (const expr of sc.thresholds || []) {
    const t = threshold(expr);
    if (!t) continue;
    (out[t[0]] = out[t[0]] || []).push(t[1]);
  }
  if (!out.failed_requests) out.failed_requests = ['count>=0']; // keep the metric in the summary
  return out;
}

// expand replaces {{name}} placeholders in action URLs and bodies.
function expand(s) {
  return String(s || '').replace(/\{\{([a-z_:0-9-]+)\}\}/g, (all, k) => (k in vars ? vars[k] : all));
}

// scenarios is "main" plus one single-iteration scenario per HTTP action.
function scenarios() {
  const out = { main: Object.assign(executor(), { exec: 'request' }) };
  (sc.actions || []).forEach((a, i) => {
    if (!a.http) {
      console.warn(`action ${i} (${JSON.stringify(a)}): signal and start actions need loadgen -stack; skipped`);
      return;
    }
    out[`action${i}`] = {
      executor: 'per-vu-iterations', vus: 1, iterations: 1, startTime: duration(a.at || '0s'),
      exec: 'action', env: { ACTION: String(i) }, tags: { action: a.name || `action${i}` },
    };
  });
  return out;
}

export const options = {
  scenarios: scenarios(),
  thresholds: thresholds(),
  summaryTrendStats: ['min', 'med', 'avg', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
  discardResponseBodies: true,
};

const params = { headers: sc.headers || {}, timeout: sc.timeout || '10s' };

// request is one iteration of the main scenario.
export function request() {
  const path = paths[(__ITER + __VU) % paths.length];
  const res = http.request(method, target + path, body, params);
  if (res.status === 0 || (expected ? expected.indexOf(res.status) < 0 : res.status < 200 || res.status > 399)) {
    failedRequests.add(1);
  }
}

// action runs the scenario action named by __ENV.ACTION once.
export function action() {
  const a = sc.actions[Number(__ENV.ACTION)].http;
  const res = http.request(a.method || 'GET', expand(a.url), expand(a.body) || null, { headers: a.headers || {} });
  const want = a.expect && a.expect.length ? a.expect : null;
  const ok = want ? want.indexOf(res.status) >= 0 : res.status >= 200 && res.status < 300;
  if (!ok) console.error(`action ${__ENV.ACTION} ${a.method || 'GET'} ${expand(a.url)}: status ${res.status}`);
}
