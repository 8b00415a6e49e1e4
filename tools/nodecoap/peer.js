// Node.js `coap` (npm, pinned by package-lock.json) as a peer of
// coapy_micro, for tests/test_nodejs_interop.py.
//
//   node peer.js server PORT
//       A coap server on 127.0.0.1:PORT: /hello (GET), /store (GET, PUT,
//       POST appends, DELETE), /large (GET: 3000 bytes, which it sends in
//       Block2 blocks), /counter (GET, observable: a new value every
//       200 ms), /upload (PUT: says how many bytes arrived). Prints "ready",
//       then a JSON line per request it handled:
//       {"method","url","type","token","payload_len"}.
//   node peer.js client METHOD URI [--non] [--payload TEXT] [--format N]
//                       [--observe N] [--block2 SZX]
//       One request with node-coap's client (the global agent); prints one
//       JSON line per response: {"code","payload","type","format",
//       "observe"}; --observe N: register, print N notifications, then
//       deregister. Exit 0, or 1 with the error on stderr.
"use strict";
const coap = require("coap");

function large() {
  const out = Buffer.alloc(3000);
  for (let i = 0; i < out.length; i++) out[i] = (i * 7 + Math.floor(i / 251)) & 255;
  return out;
}

function server(port) {
  let store = Buffer.from("initial");
  let counter = 0;
  const observers = new Set();
  setInterval(() => {
    counter += 1;
    for (const res of observers) res.write(String(counter));
  }, 200);
  const srv = coap.createServer({ type: "udp4" });
  srv.on("request", (req, res) => {
    const url = req.url.split("?")[0];
    console.log(JSON.stringify({
      method: req.method, url, type: req._packet.confirmable ? "CON" : "NON",
      token: req._packet.token.toString("hex"), payload_len: req.payload.length,
    }));
    if (url === "/hello" && req.method === "GET") {
      res.setOption("Content-Format", "text/plain");
      return res.end("hello from node-coap");
    }
    if (url === "/store") {
      if (req.method === "GET") return res.end(store);
      if (req.method === "PUT") { store = req.payload; res.code = "2.04"; return res.end(); }
      if (req.method === "POST") {
        store = Buffer.concat([store, req.payload]); res.code = "2.01"; return res.end();
      }
      if (req.method === "DELETE") { store = Buffer.alloc(0); res.code = "2.02"; return res.end(); }
    }
    if (url === "/large" && req.method === "GET") return res.end(large());
    if (url === "/counter" && req.method === "GET") {
      if (req.headers.Observe !== 0) return res.end(String(counter));
      observers.add(res);
      res.on("finish", () => observers.delete(res));
      return res.write(String(counter));
    }
    if (url === "/upload" && req.method === "PUT") {
      res.code = "2.04";
      return res.end(String(req.payload.length));
    }
    res.code = "4.04";
    res.end();
  });
  srv.on("error", (e) => { console.error(String(e)); process.exit(1); });
  srv.listen(port, "127.0.0.1", () => console.log("ready"));
}

function client(method, uri, args) {
  const opt = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const observeCount = opt("--observe") !== undefined ? Number(opt("--observe")) : 0;
  const u = new URL(uri);
  const req = coap.request({
    hostname: u.hostname, port: Number(u.port || 5683), pathname: u.pathname,
    query: u.search ? u.search.slice(1) : "", method,
    confirmable: !args.includes("--non"), observe: observeCount > 0,
  });
  if (opt("--format") !== undefined) req.setOption("Content-Format", Number(opt("--format")));
  if (opt("--block2") !== undefined) req.setOption("Block2", Buffer.from([Number(opt("--block2"))]));
  const show = (res, payload) => console.log(JSON.stringify({
    code: res.code, payload: payload.toString("latin1"),
    type: res._packet.confirmable ? "CON" : res._packet.ack ? "ACK" : res._packet.reset ? "RST" : "NON",
    format: res.headers["Content-Format"] ?? null, observe: res.headers.Observe ?? null,
  }));
  const timer = setTimeout(() => { console.error("timeout"); process.exit(1); }, 15000);
  req.on("response", (res) => {
    if (observeCount === 0) {
      show(res, res.payload);
      clearTimeout(timer);
      setTimeout(() => process.exit(0), 50);
      return;
    }
    let seen = 0;
    res.on("data", (chunk) => {
      show(res, chunk);
      seen += 1;
      if (seen >= observeCount) {
        res.close(); // deregisters (GET with Observe 1)
        clearTimeout(timer);
        setTimeout(() => process.exit(0), 500);
      }
    });
  });
  req.on("error", (e) => { console.error(String(e)); process.exit(1); });
  if (opt("--payload") !== undefined) req.write(opt("--payload"));
  req.end();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "server") server(Number(rest[0]));
else if (mode === "client") client(rest[0], rest[1], rest.slice(2));
else { console.error("usage: peer.js server PORT | client METHOD URI [...]"); process.exit(2); }
