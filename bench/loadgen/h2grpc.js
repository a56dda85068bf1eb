// A gRPC-over-HTTP/2 load generator that can send a different bearer token on every call.
//
// h2load sends one fixed header set, so it cannot measure cold (never seen) tokens. This sends
// exactly what h2load sends (POST, content-type application/grpc, te: trailers, one 5-byte
// frame of an empty message) with Node's own http2 module, no dependencies, keeping
// --connections x --streams calls in flight. Tokens come from a file, one a line, each used
// once (cold; the run stops early if they run out), or one --token reused (warm). A call counts
// as OK only when grpc-status is 0. Prints one JSON object.
//
// Usage:
//   node h2grpc.js --url http://127.0.0.1:50051 --path /secureroute.v1.SecureRouteService/SecureRoute \
//     (--tokens tokens.txt | --token eyJ...) --duration 5 --warmup 1 --connections 4 --streams 8
"use strict";

const fs = require("node:fs");
const http2 = require("node:http2");

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  if (index >= 0 && index + 1 < process.argv.length) return process.argv[index + 1];
  if (fallback === undefined) {
    console.error(`h2grpc.js: --${name} is required`);
    process.exit(2);
  }
  return fallback;
}

const url = option("url");
const path = option("path");
const tokenFile = option("tokens", "");
const oneToken = option("token", "");
const durationMs = Number(option("duration", "5")) * 1000;
const warmupMs = Number(option("warmup", "1")) * 1000;
const connections = Number(option("connections", "4"));
const streams = Number(option("streams", "8"));

const tokens = tokenFile
  ? fs.readFileSync(tokenFile, "ascii").split("\n").filter((line) => line.length > 0)
  : [oneToken];
const reuse = !tokenFile;
const frame = Buffer.from([0, 0, 0, 0, 0]);

let next = 0;
let exhausted = false;
const started = performance.now();
const measureFrom = started + warmupMs;
let stopAt = measureFrom + durationMs;
const latencies = [];
const errors = {};
let inFlight = 0;

function nextToken() {
  if (reuse) return tokens[0];
  if (next >= tokens.length) {
    exhausted = true;
    return null;
  }
  return tokens[next++];
}

function record(begun, status) {
  if (begun < measureFrom) return;
  latencies.push(performance.now() - begun);
  if (status !== "0") errors[status] = (errors[status] || 0) + 1;
}

function issue(session) {
  const now = performance.now();
  const token = now < stopAt ? nextToken() : null;
  if (token === null) {
    if (now < stopAt) stopAt = now; // out of tokens: the measured window ends here
    if (--inFlight === 0) finish();
    return;
  }
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  let status = "no-status";
  stream.on("response", (headers) => {
    if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]); // trailers-only
  });
  stream.on("trailers", (trailers) => {
    if (trailers["grpc-status"] !== undefined) status = String(trailers["grpc-status"]);
  });
  stream.on("data", () => {});
  stream.on("close", () => {
    record(now, status);
    issue(session);
  });
  stream.on("error", () => {
    status = "stream-error";
  });
  stream.end(frame);
}

const sessions = [];
let connected = 0;
for (let i = 0; i < connections; i++) {
  const session = http2.connect(url, { settings: { enablePush: false } });
  session.on("error", (err) => {
    console.error(`h2grpc.js: ${err.message}`);
    process.exit(1);
  });
  session.on("connect", () => {
    if (++connected === connections) start();
  });
  sessions.push(session);
}

function start() {
  for (const session of sessions) {
    for (let s = 0; s < streams; s++) {
      inFlight++;
      issue(session);
    }
  }
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.max(1, Math.ceil((q / 100) * sorted.length)) - 1];
}

function finish() {
  for (const session of sessions) session.close();
  const seconds = Math.max(stopAt - measureFrom, 1e-6) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  process.stdout.write(
    JSON.stringify({
      requests: latencies.length,
      seconds,
      rps: latencies.length / seconds,
      p50_us: percentile(sorted, 50) * 1000,
      p99_us: percentile(sorted, 99) * 1000,
      errors,
      tokens_exhausted: exhausted,
    }) + "\n",
  );
}
