// Runs Python in the real MicroPython VM (WebAssembly port) under Node.
//
//   node tools/mpvm/run.mjs [--heap BYTES] [--pkg DIR] [--file SRC DEST]... --script FILE.py [ARGS...]
//       Run one script as __main__ with sys.argv = [FILE.py, ARGS...]; its output
//       goes to stdout/stderr; exit 1 with the traceback on stderr if it raised.
//   node tools/mpvm/run.mjs [--heap BYTES] --tests FILE.py [FILE.py...]
//       For each file, in a fresh VM: import it and call its module-level
//       `def test_*` functions in source order. Before each test prints
//       `@@START {"file","test"}`, after it `@@RESULT {"file","test","outcome","detail"}`
//       (outcome passed|failed|skipped); anything else on stdout is noise.
//       An import failure is one failed result with test "<import>".
//       With --echo, what the tests print goes to stdout too (a benchmark that
//       needs the harness's collection between steps reports figures so).
//
// Both modes install coapy_micro/**.py as /lib/coapy_micro, the test
// helpers (every tests/portable/*.py but test_*.py: support.py, fakenet.py...)
// and the node app (ports/common/*.py) in /lib. --pkg DIR installs DIR's .py and .mpy files as /lib/coapy_micro
// instead (the benchmarks pass a folder of mpy-cross output, which is what a
// board loads); --app DIR installs DIR's .py and .mpy files (not its folders)
// in /lib in place of ports/common's (tools/node_heap.py passes the node
// app as a board build has it). --file SRC DEST copies the host file SRC to the absolute path
// DEST in the VM's filesystem (its folder must exist: / or /lib), before
// anything runs; repeatable (tools/node_heap.py passes a ROMFS image so).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// Same rule as tests/test_micropython_vm.py. MicroPython dict order is not
// definition order, so the order comes from the source text.
const TEST_DEF = /^def (test_\w+)\s*\(/gm;

function usage(msg) {
  process.stderr.write(`${msg}\nusage: run.mjs [--heap BYTES] [--pkg DIR] [--app DIR] [--file SRC DEST]... [--echo] (--script FILE.py [ARGS...] | --tests FILE.py...)\n`);
  process.exit(2);
}

let heap = 512 * 1024;
let echo = false;
let pkgDir = path.join(ROOT, "coapy_micro");
let appDir = path.join(ROOT, "ports/common");
let mode = null;
let files = [];
const extra = []; // [SRC, DEST] of --file
const argv = process.argv.slice(2);
while (argv.length && !mode) {
  const a = argv.shift();
  if (a === "--heap") heap = Number(argv.shift());
  else if (a === "--pkg") pkgDir = path.resolve(argv.shift());
  else if (a === "--app") appDir = path.resolve(argv.shift());
  else if (a === "--echo") echo = true;
  else if (a === "--file") {
    const [src, dest] = argv.splice(0, 2);
    if (!dest || !dest.startsWith("/")) usage("--file needs SRC and an absolute DEST");
    extra.push([path.resolve(src), dest]);
  }
  else if (a === "--script" || a === "--tests") { mode = a.slice(2); files = argv; }
  else usage(`unknown argument ${a}`);
}
if (!mode || !files.length) usage("nothing to run");
if (!Number.isInteger(heap) || heap <= 0) usage("--heap needs a positive integer");

// VM output arrives byte by byte (linebuffer: false, so a last line without a
// newline is not lost); whole lines go to `sink`, swapped per mode.
let sink = null;
function lineWriter(stream) {
  let buf = [];
  const flush = () => {
    if (buf.length) sink(stream, Buffer.from(buf).toString());
    buf = [];
  };
  const write = (bytes) => {
    for (const c of bytes) {
      buf.push(c);
      if (c === 10) flush();
    }
  };
  return { write, flush };
}
const vmOut = lineWriter(process.stdout);
const vmErr = lineWriter(process.stderr);
const flushVm = () => { vmOut.flush(); vmErr.flush(); };

function copyPy(mp, src, dst) {
  mp.FS.mkdir(dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    if (ent.isDirectory() && ent.name !== "__pycache__") copyPy(mp, s, `${dst}/${ent.name}`);
    else if (ent.isFile() && /\.m?py$/.test(ent.name)) mp.FS.writeFile(`${dst}/${ent.name}`, fs.readFileSync(s));
  }
}

async function boot() {
  const mp = await loadMicroPython({ heapsize: heap, linebuffer: false, stdout: vmOut.write, stderr: vmErr.write });
  mp.FS.mkdir("/lib");
  if (fs.existsSync(pkgDir)) copyPy(mp, pkgDir, "/lib/coapy_micro");
  // The test helpers, and the node app a board keeps in /lib.
  const helpers = path.join(ROOT, "tests/portable");
  for (const name of fs.readdirSync(helpers)) {
    if (/\.py$/.test(name) && !name.startsWith("test_")) mp.FS.writeFile(`/lib/${name}`, fs.readFileSync(path.join(helpers, name)));
  }
  for (const ent of fs.existsSync(appDir) ? fs.readdirSync(appDir, { withFileTypes: true }) : []) {
    if (ent.isFile() && /\.m?py$/.test(ent.name)) mp.FS.writeFile(`/lib/${ent.name}`, fs.readFileSync(path.join(appDir, ent.name)));
  }
  for (const [src, dest] of extra) mp.FS.writeFile(dest, fs.readFileSync(src));
  return mp;
}

async function runScript(file, args) {
  sink = (stream, text) => stream.write(text);
  const mp = await boot();
  mp.FS.writeFile("/main.py", fs.readFileSync(file));
  // JSON string/array literals are valid Python literals.
  const code = `
import sys
sys.argv[:] = ${JSON.stringify([file, ...args])}
_mpvm_rc = 0
try:
    exec(compile(open("/main.py").read(), ${JSON.stringify(file)}, "exec"))
except SystemExit as e:
    _mpvm_rc = e.args[0] if e.args else 0
`;
  let rc;
  try {
    mp.runPython(code);
    rc = mp.globals.get("_mpvm_rc");
  } catch (e) {
    flushVm();
    process.stderr.write(e.message);
    return 1;
  }
  flushVm();
  if (rc === null || rc === undefined) return 0;
  if (typeof rc === "number") return rc;
  process.stderr.write(`${rc}\n`); // sys.exit("message")
  return 1;
}

// Defined in each VM. Tracebacks are formatted inside the VM; the outcome is
// left in globals for the JS side. BaseException: nothing may escape.
const HARNESS = `
import gc, io, sys, support

def _mpvm_import(name):
    global _mpvm_mod
    _mpvm_mod = __import__(name)

def _mpvm_test(name):
    getattr(_mpvm_mod, name)()

def _mpvm_call(fn, arg):
    global _mpvm_outcome, _mpvm_detail
    try:
        fn(arg)
        _mpvm_outcome, _mpvm_detail = "passed", ""
    except support.Skip as e:
        _mpvm_outcome, _mpvm_detail = "skipped", str(e)
    except BaseException as e:
        s = io.StringIO()
        sys.print_exception(e, s)
        _mpvm_outcome, _mpvm_detail = "failed", s.getvalue()
`;

async function runTests(files) {
  let output = "";
  sink = (_stream, text) => {
    output += text;
    if (echo) process.stdout.write(text);
  };
  let failed = false;
  const emit = (marker, rec) => process.stdout.write(`${marker} ${JSON.stringify(rec)}\n`);
  for (const file of files) {
    const base = path.basename(file);
    const src = fs.readFileSync(file, "utf8");
    const names = [...new Set(Array.from(src.matchAll(TEST_DEF), (m) => m[1]))];
    const mp = await boot();
    mp.FS.writeFile(`/lib/${base}`, src);
    // Returns false if the step failed. "<import>" is reported only if it fails.
    const step = (test, call) => {
      output = "";
      emit("@@START", { file: base, test });
      let outcome, detail;
      try {
        // Collect in a call of its own: in this VM gc.collect() reclaims
        // garbage only when no Python frame is live (a collect made inside
        // a running test frees nothing), so each test starts from a heap
        // holding only what is really alive (support.heap_now() reads it).
        mp.runPython("gc.collect()");
        mp.runPython(call);
        outcome = mp.globals.get("_mpvm_outcome");
        detail = mp.globals.get("_mpvm_detail");
      } catch (e) { // the harness itself broke
        outcome = "failed";
        detail = e.message;
      }
      flushVm();
      if (outcome === "failed") {
        failed = true;
        if (output) detail += `\n----- output -----\n${output}`;
      }
      if (test !== "<import>" || outcome === "failed") emit("@@RESULT", { file: base, test, outcome, detail });
      return outcome !== "failed";
    };
    mp.runPython(HARNESS);
    const mod = base.replace(/\.py$/, "");
    if (!step("<import>", `_mpvm_call(_mpvm_import, "${mod}")`)) continue;
    for (const name of names) step(name, `_mpvm_call(_mpvm_test, "${name}")`);
  }
  return failed ? 1 : 0;
}

process.exitCode = mode === "script" ? await runScript(files[0], files.slice(1)) : await runTests(files);
