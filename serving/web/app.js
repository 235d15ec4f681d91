// The keras-vae decoder in a web browser: onnxruntime-web (WebAssembly) runs the exported
// decoder.onnx. No build step: this file, index.html and style.css are the page; the
// export writes them into EXPORT/web with the model, its metadata (model.json) and, when
// it was installed with npm, the runtime.
//
// Everything the model says (class names, metadata) reaches the page as text, never as
// markup: this file sets textContent and never innerHTML.
"use strict";

// --- the seeded generator: the same numbers as serving/sample.py --------------------------

// lowbias32 (C. Wellons), on unsigned 32-bit integers.
function lowbias32(x) {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

// count uniforms in (0, 1): (h(i ^ key) + 1/2) / 2^32, key = h(h(seed mod 2^32) ^ stream).
function seededUniform(seed, stream, count) {
  const key = lowbias32((lowbias32(seed >>> 0) ^ stream) >>> 0);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = (lowbias32((i ^ key) >>> 0) + 0.5) / 4294967296;
  return out;
}

// count standard normals by Box-Muller from streams 0 and 1.
function seededNormal(seed, count) {
  const u0 = seededUniform(seed, 0, count), u1 = seededUniform(seed, 1, count);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = Math.sqrt(-2 * Math.log(u0[i])) * Math.cos(2 * Math.PI * u1[i]);
  }
  return out;
}

// n seeded draws of the decoder's noise, row-major Float32Array [n * dim], as
// serving/sample.py seeded_noise: the decoder scales it by the temperature and its prior.
function seededNoise(n, dim, seed) {
  return Float32Array.from(seededNormal(seed, n * dim));
}

// n points on the line between the first two noise draws of the seed, ends included.
function interpolationNoise(n, dim, seed) {
  const ends = seededNoise(2, dim, seed);
  const noise = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    const w = n === 1 ? 0 : r / (n - 1);
    for (let j = 0; j < dim; j++) noise[r * dim + j] = (1 - w) * ends[j] + w * ends[dim + j];
  }
  return noise;
}

// --- the one visible line ------------------------------------------------------------

class PageError extends Error {}

function say(text, state) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.dataset.state = state;
}

// --- loading: runtime, metadata, decoders --------------------------------------

function loadScript(src, integrity) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    if (integrity) {
      script.integrity = integrity;
      script.crossOrigin = "anonymous";
    }
    script.onload = resolve;
    script.onerror = () => reject(new Error(src));
    document.head.appendChild(script);
  });
}

// The runtime the export copied beside the page, else the pinned version from the CDN,
// checked against its integrity hash.
async function loadRuntime(runtime) {
  const places = [];
  if (runtime.local) places.push([runtime.local, null]);
  places.push([runtime.cdn, runtime.integrity]);
  for (const [base, integrity] of places) {
    try {
      await loadScript(base + "ort.wasm.min.js", integrity);
      ort.env.wasm.wasmPaths = new URL(base, window.location.href).href;
      return base;
    } catch (error) {
      continue;
    }
  }
  throw new PageError(`onnxruntime-web ${runtime.version} could not be loaded from ` +
    `${runtime.local || "this folder"} nor from ${runtime.cdn}: offline, install it with ` +
    `npm (serving/web: npm ci) and export again`);
}

async function fetchFile(name, what) {
  let response;
  try {
    response = await fetch(name);
  } catch (error) {
    throw new PageError(`${name} could not be fetched (${error.message}); serve this ` +
      `folder over HTTP, e.g. python -m http.server -d ${"export/web"}`);
  }
  if (!response.ok) {
    throw new PageError(`${name} is missing (HTTP ${response.status}): ${what}`);
  }
  return response;
}

async function loadMetadata() {
  const response = await fetchFile("model.json",
    "this page needs the web/ folder that python -m export writes, whole");
  try {
    return await response.json();
  } catch (error) {
    throw new PageError("model.json is damaged; export again with python -m export RUN_DIR");
  }
}

async function loadDecoder(model, precision) {
  const file = model.decoders[precision];
  const response = await fetchFile(file, "copy the export's web/ folder whole");
  const bytes = new Uint8Array(await response.arrayBuffer());
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (error) {
    const reason = String(error.message || error).split("\n")[0].slice(0, 160);
    throw new PageError(`${file} is not a model onnxruntime can load (${reason}); ` +
      `export again with python -m export RUN_DIR`);
  }
  const inputs = session.inputNames;
  if (inputs[0] === "z") {
    throw new PageError(`${file} was exported by an older keras-vae (it takes z); ` +
      `export again with python -m export RUN_DIR`);
  }
  if (inputs[0] !== "noise" || !session.outputNames.includes("image")) {
    throw new PageError(`${file} takes ${inputs.join(", ")} and gives ` +
      `${session.outputNames.join(", ")}: it is not a decoder (an encoder?); ` +
      `the page needs decoder.onnx`);
  }
  return session;
}

// --- decoding and drawing ---------------------------------------------------------------

// A mixture prior's component draws [n] (the VampPrior, a conditional model's mixture per
// class): seeded uniforms from stream 2; one for a whole interpolated line (oneLine), as
// serving/sample.py component_draws. null for other decoders.
function componentDraws(page, n, seed, oneLine) {
  if (!page.model.component_draw) return null;
  const u = seededUniform(seed, 2, oneLine ? 1 : n);
  return Float32Array.from({ length: n }, (_, i) => u[oneLine ? 0 : i]);
}

// The sampling contract: noise [n * dim], the temperature (and labels, for a conditional
// model; component draws, for a mixture prior) → images, Float32Array [n, H, W, C].
async function decode(page, noise, labels, draws) {
  const n = noise.length / page.model.latent_dim;
  const feeds = {
    noise: new ort.Tensor("float32", noise, [n, page.model.latent_dim]),
    temperature: new ort.Tensor("float32", new Float32Array(n).fill(page.temperature), [n]),
  };
  if (page.model.conditional) {
    feeds.label = new ort.Tensor("int64", BigInt64Array.from(labels, BigInt), [n]);
  }
  if (draws) feeds.component_draw = new ort.Tensor("float32", draws, [n]);
  const session = await page.session();
  const start = performance.now();
  const result = await session.run(feeds, ["image"]);
  const milliseconds = performance.now() - start;
  page.timings.push({ images: n, milliseconds, precision: page.precision });
  return { images: result.image.data, milliseconds };
}

function drawImages(container, images, count, shape, onPick) {
  const [height, width, channels] = shape;
  const size = height * width * channels;
  const canvases = [];
  for (let i = 0; i < count; i++) {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    canvas.style.setProperty("--width", `${width}px`);
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(width, height);
    for (let p = 0; p < height * width; p++) {
      for (let c = 0; c < 3; c++) {
        const value = images[i * size + p * channels + (channels === 3 ? c : 0)];
        pixels.data[4 * p + c] = Math.round(Math.min(1, Math.max(0, value)) * 255);
      }
      pixels.data[4 * p + 3] = 255;
    }
    context.putImageData(pixels, 0, 0);
    if (onPick) canvas.addEventListener("click", () => onPick(i, canvas));
    container.appendChild(canvas);
    canvases.push(canvas);
  }
  return canvases;
}

function rowName(container, text) {
  const name = document.createElement("p");
  name.className = "row-name";
  name.textContent = text;
  container.appendChild(name);
}

function describeTiming(page, images, milliseconds) {
  const threads = ort.env.wasm.numThreads;
  document.getElementById("timing").textContent =
    `${images} image${images === 1 ? "" : "s"} decoded in ${milliseconds.toFixed(1)} ms ` +
    `(${page.precision}, WebAssembly, ${threads} thread${threads === 1 ? "" : "s"})`;
}

// --- the three views --------------------------------------------------------------------

// The grid: count draws of the class picked, or each draw decoded as every class, one
// named row per class (as serving/sample.py draws without --label).
async function drawGrid(page) {
  const settings = page.settings();
  const dim = page.model.latent_dim;
  const z = seededNoise(settings.count, dim, settings.seed);
  const names = page.model.label_names;
  const everyClass = page.model.conditional && settings.label === "every";
  const rows = everyClass ? names.length : 1;
  const tiled = new Float32Array(rows * z.length);
  const labels = [];
  for (let r = 0; r < rows; r++) {
    tiled.set(z, r * z.length);
    for (let i = 0; i < settings.count; i++) {
      labels.push(everyClass ? r : Number(settings.label));
    }
  }
  const draws = componentDraws(page, settings.count, settings.seed, false);
  const tiledDraws = draws && Float32Array.from(
    { length: rows * settings.count }, (_, i) => draws[i % settings.count]);
  const { images, milliseconds } = await decode(page, tiled, labels, tiledDraws);
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  const size = page.model.image_shape.reduce((a, b) => a * b, 1);
  for (let r = 0; r < rows; r++) {
    if (everyClass) rowName(grid, names[r]);
    const first = r * settings.count;
    drawImages(grid, images.subarray(first * size), settings.count, page.model.image_shape,
      (i, canvas) => choose(page, tiled.slice((first + i) * dim, (first + i + 1) * dim),
                            labels[first + i], canvas, draws && draws[i]));
  }
  describeTiming(page, rows * settings.count, milliseconds);
}

async function drawInterpolation(page) {
  const seed = Number(document.getElementById("interpolate-seed").value);
  const steps = Number(document.getElementById("steps").value);
  const settings = page.settings();
  const z = interpolationNoise(steps, page.model.latent_dim, seed);
  const label = settings.label === "every" ? 0 : Number(settings.label);
  const { images } = await decode(page, z, new Array(steps).fill(label),
                                  componentDraws(page, steps, seed, true));
  const row = document.getElementById("row");
  row.replaceChildren();
  drawImages(row, images, steps, page.model.image_shape);
}

// One sample's coordinates as sliders: the most active latent units the metadata names.
function choose(page, z, label, canvas, draw) {
  document.querySelectorAll(".images canvas.chosen").forEach((c) => c.classList.remove("chosen"));
  canvas.classList.add("chosen");
  page.focus = { z: Float32Array.from(z), label, draw };
  const sliders = document.getElementById("sliders");
  sliders.replaceChildren();
  for (const d of page.model.slider_dims) {
    const field = document.createElement("label");
    field.textContent = `ε[${d}]`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -4, max: 4, step: 0.01,
                           value: Math.max(-4, Math.min(4, z[d])) });
    input.dataset.dim = d;
    input.addEventListener("input", () => {
      page.focus.z[d] = Number(input.value);
      drawFocus(page).catch(fail);
    });
    field.appendChild(input);
    sliders.appendChild(field);
  }
  return drawFocus(page);
}

async function drawFocus(page) {
  const { images, milliseconds } = await decode(page, page.focus.z, [page.focus.label],
    page.model.component_draw ? Float32Array.of(page.focus.draw) : null);
  const focus = document.getElementById("focus");
  focus.replaceChildren();
  drawImages(focus, images, 1, page.model.image_shape);
  describeTiming(page, 1, milliseconds);
}

// --- the page -----------------------------------------------------------------------------

function fail(error) {
  const text = error instanceof PageError ? error.message
    : `unexpected error: ${String(error && error.message || error)}`;
  say(text, "error");
}

// ?label=: a class name (in any letter case, when that leaves one) or an index, as
// serving/sample.py's --label; an unknown name is refused with the closest one, if close.
function resolveLabel(asked, names) {
  if (names.includes(asked)) return names.indexOf(asked);
  if (/^\d+$/.test(asked) && Number(asked) < names.length) return Number(asked);
  const sameLetters = names.filter((n) => n.toLowerCase() === asked.toLowerCase());
  if (sameLetters.length === 1) return names.indexOf(sameLetters[0]);
  const close = closestName(asked, names);
  const hint = close === null ? "" : ` (did you mean ${JSON.stringify(close)}?)`;
  throw new PageError(`label ${JSON.stringify(asked)} is not a class of this model${hint}; ` +
    `known: ${names.map((n, i) => `${i} ${n}`).join(", ")}`);
}

// The name most like `text`, if its similarity 1 − edits / longer length is at least 0.6
// (the cutoff of Python's difflib.get_close_matches, which the Python samplers use).
function closestName(text, names) {
  let best = null, bestScore = 0;
  for (const name of names) {
    const score = 1 - editDistance(text, name) / Math.max(text.length, name.length, 1);
    if (score >= 0.6 && score > bestScore) [best, bestScore] = [name, score];
  }
  return best;
}

function editDistance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

function fillControls(model, params) {
  for (const [id, key] of [["seed", "seed"], ["count", "n"], ["temperature", "temperature"],
                           ["interpolate-seed", "interpolate_seed"], ["steps", "steps"]]) {
    if (params.has(key)) document.getElementById(id).value = params.get(key);
  }
  const picker = document.getElementById("class");
  if (model.conditional) {
    document.getElementById("class-label").hidden = false;
    const every = new Option("every class, a row each", "every");
    picker.appendChild(every);
    model.label_names.forEach((name, index) => picker.appendChild(new Option(name, index)));
    const asked = params.get("label");
    if (asked !== null) picker.value = String(resolveLabel(asked, model.label_names));
  }
  if (!model.decoders.int8) document.querySelector("input[value=int8]").disabled = true;
  if (params.get("precision") === "int8" && model.decoders.int8) {
    document.querySelector("input[value=int8]").checked = true;
  }
}

function describeModel(model) {
  const [height, width, channels] = model.image_shape;
  const parts = [`${model.dataset}`, `${height}×${width}×${channels}`,
                 `latent ${model.latent_dim}`, `${model.likelihood} likelihood`,
                 model.prior === "vamp"
                   ? "VampPrior"
                   : model.conditional
                     ? (model.component_draw ? "a mixture prior p(z | y) per class"
                                             : "a prior p(z | y) per class")
                     : "N(0, I) prior"];
  if (model.conditional) parts.push(`${model.label_names.length} classes`);
  document.getElementById("model-line").textContent = parts.join(" · ");
}

async function start() {
  const params = new URLSearchParams(window.location.search);
  if (typeof WebAssembly !== "object") {
    throw new PageError("this browser has no WebAssembly, which the decoder runs on; " +
      "open the page in a current Chrome, Firefox, Safari or Edge");
  }
  const model = await loadMetadata();
  describeModel(model);
  fillControls(model, params);
  await loadRuntime(model.runtime);
  const wanted = Number(params.get("threads") || 0);
  ort.env.wasm.numThreads = wanted || (self.crossOriginIsolated ? navigator.hardwareConcurrency : 1);
  const sessions = {};
  const page = {
    model, timings: [], focus: null,
    get precision() { return document.querySelector("input[name=precision]:checked").value; },
    get temperature() { return Number(document.getElementById("temperature").value); },
    session() {
      const precision = this.precision;
      sessions[precision] = sessions[precision] || loadDecoder(model, precision);
      return sessions[precision];
    },
    settings() {
      return { seed: Number(document.getElementById("seed").value),
               count: Number(document.getElementById("count").value),
               temperature: Number(document.getElementById("temperature").value),
               label: model.conditional ? document.getElementById("class").value : "0" };
    },
  };
  window.kerasVae = page;
  setUpScoring(page);
  await page.session();
  await redraw(page);
  page.firstPictureMs = performance.now();
  document.getElementById("sample-form").addEventListener("submit", (event) => {
    event.preventDefault();
    redraw(page).catch(fail);
  });
  document.getElementById("interpolate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    drawInterpolation(page).catch(fail);
  });
  document.querySelectorAll("input[name=precision]").forEach((radio) =>
    radio.addEventListener("change", () => redraw(page).catch(fail)));
}

async function redraw(page) {
  say("Decoding…", "busy");
  await drawGrid(page);
  await drawInterpolation(page);
  say("Ready: change the seed, count, temperature or class and draw again; click a " +
      "sample to move its coordinates.", "done");
}

start().catch(fail);
