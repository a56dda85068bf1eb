// The original system, rebuilt for side-by-side benchmarks: Express, express-jwt (which verifies
// with jsonwebtoken) and jwks-rsa with its key cache and rate limit, as the Auth0 quickstarts set
// them up. GET /health answers "Healthy"; GET /secure-route needs a valid RS256/ES256 bearer token.
//
// Usage:
//   node server.js --listen 127.0.0.1:0 --issuer http://127.0.0.1:8080 --audience secureroute \
//     [--jwks-uri http://127.0.0.1:8080/jwks]
// It prints "listening on 127.0.0.1:PORT (http)" once it accepts connections (the bench reads PORT).
"use strict";

const express = require("express");
const { expressjwt } = require("express-jwt");
const jwksRsa = require("jwks-rsa");

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  if (index >= 0 && index + 1 < process.argv.length) return process.argv[index + 1];
  if (fallback === undefined) {
    console.error(`server.js: --${name} is required`);
    process.exit(2);
  }
  return fallback;
}

const listen = option("listen", "127.0.0.1:0");
const issuer = option("issuer");
const audience = option("audience");
const jwksUri = option("jwks-uri", `${issuer.replace(/\/$/, "")}/jwks`);
const separator = listen.lastIndexOf(":");
const host = listen.slice(0, separator);
const port = Number(listen.slice(separator + 1));

const app = express();
app.disable("x-powered-by");
app.disable("etag");

app.get("/health", (req, res) => {
  res.type("text/plain").send("Healthy");
});

// jwks-rsa's documented express-jwt setup: cached keys, at most 5 JWKS fetches a minute.
const checkJwt = expressjwt({
  secret: jwksRsa.expressJwtSecret({
    cache: true,
    cacheMaxEntries: 5,
    cacheMaxAge: 600000,
    rateLimit: true,
    jwksRequestsPerMinute: 5,
    jwksUri,
  }),
  audience,
  issuer,
  algorithms: ["RS256", "ES256"],
});

app.get("/secure-route", checkJwt, (req, res) => {
  res.type("text/plain").send("Super secret stuff");
});

// express-jwt reports every failure as an UnauthorizedError; keep the answer as short as ours.
app.use((err, req, res, next) => {
  if (err && err.name === "UnauthorizedError") {
    res.status(401).set("WWW-Authenticate", "Bearer").type("text/plain").send("401 Unauthorized");
    return;
  }
  next(err);
});

const server = app.listen(port, host, () => {
  const address = server.address();
  console.log(`listening on ${address.address}:${address.port} (http)`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
