// Times an ONNX file (model/python/reference/export_onnx.py) in ONNX Runtime for Node on the CPU,
// the ONNX Runtime side of hfam-bench; with --input, runs it once on a given input instead and
// writes its outputs (the export's test).
//
//   NODE_PATH=<node_modules with onnxruntime-node> node ort_bench.js MODEL.onnx --size WxH
//       [-n N] [--threads T] [--input IN.f32 --output PREFIX]
//
// Timing: 2 warm-up runs, then N timed runs on one random normalised input; one intra-op pool
// of T threads (default 2) and sequential execution, so that T matches the engine's threads.
// The last line printed is exactly `median_ms <value>` (hfam-bench parses it).
// --input: a little-endian float32 (1, 3, H, W) file; each output goes to PREFIX.<name>.f32.
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

const WARM_UP_RUNS = 2;

function fail(message) {
  process.stderr.write(`ort_bench.js: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { model: null, width: 0, height: 0, runs: 10, threads: 2, input: null, output: null };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) fail(`${argv[i]} needs a value`);
      return argv[++i];
    };
    const positive = (text, what) => {
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1) fail(`${what} ${text}: want a positive integer`);
      return n;
    };
    switch (argv[i]) {
      case '--size': {
        const m = /^(\d+)x(\d+)$/.exec(value());
        if (!m) fail(`--size ${argv[i]}: want WxH`);
        args.width = Number(m[1]);
        args.height = Number(m[2]);
        break;
      }
      case '-n': args.runs = positive(value(), '-n'); break;
      case '--threads': args.threads = positive(value(), '--threads'); break;
      case '--input': args.input = value(); break;
      case '--output': args.output = value(); break;
      default:
        if (argv[i].startsWith('-') || args.model) fail(`unexpected argument ${argv[i]}`);
        args.model = argv[i];
    }
  }
  if (!args.model || !args.width) fail('usage: ort_bench.js MODEL.onnx --size WxH [-n N] [--threads T]');
  if (!args.input !== !args.output) fail('--input and --output go together');
  return args;
}

// Standard normal values (Box-Muller) from a seeded generator, so that every run sees the same input.
function randomInput(count, seed) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 1) / 4294967297;
  };
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++)
    data[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return data;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const count = 3 * args.width * args.height;
  const shape = [1, 3, args.height, args.width];

  if (args.input) {
    const bytes = fs.readFileSync(args.input);
    if (bytes.length !== 4 * count) fail(`${args.input}: ${bytes.length} bytes, want ${4 * count}`);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const results = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
    for (const name of session.outputNames) {
      const t = results[name];
      fs.writeFileSync(`${args.output}.${name}.f32`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      console.log(`${name} ${t.dims.join('x')}`);
    }
    return;
  }

  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', randomInput(count, 1), shape) };
  for (let i = 0; i < WARM_UP_RUNS; i++)
    await session.run(feeds);
  const times = [];
  for (let i = 0; i < args.runs; i++) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(`onnxruntime-node ${ort.env.versions.node}, cpu, ${args.threads} intra-op threads, fp32, ` +
              'sequential, all graph optimisations');
  console.log(`runs ${args.runs}: min ${Math.min(...times).toFixed(2)} ms, mean ${mean.toFixed(2)} ms`);
  console.log(`median_ms ${median(times).toFixed(3)}`);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
