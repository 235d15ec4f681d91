// The "score an image" panel: drop or choose a picture, see how unusual the model finds
// it, whether the run's threshold flags it, and where in the picture it is unlikely. The
// export's scorer.onnx computes it, the same file and numbers as serving/score.py.
//
// A file is read as serving/score.py reads it: its declared size is checked against the
// pixel limit before any pixel is decoded; transparency goes over white; colour files
// are refused for a grayscale model and grayscale ones repeated for a colour model;
// grayscale is Pillow's "L" conversion, (19595 R + 38470 G + 7471 B + 2^15) >> 16. The page
// does not resample: a picture of another size is refused in one line (the command and
// score.py resize as the run did). Everything the file says reaches the page as text.
"use strict";

const MAX_IMAGE_PIXELS = 50000000;  // serving/score.py's and training's default

class ScoreError extends Error {}

// {width, height, colour}: what a PNG, JPEG, GIF, BMP or WebP file's header declares
// (colour null where the header does not say); null for anything else.
function declaredSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at, n) => String.fromCharCode(...bytes.subarray(at, at + n));
  if (bytes.length >= 26 && ascii(1, 3) === "PNG") {
    const type = bytes[25];
    return { width: view.getUint32(16), height: view.getUint32(20),
             colour: type === 2 || type === 6 ? true : type === 0 || type === 4 ? false : null };
  }
  if (bytes.length >= 10 && ascii(0, 3) === "GIF") {
    return { width: view.getUint16(6, true), height: view.getUint16(8, true), colour: null };
  }
  if (bytes.length >= 26 && ascii(0, 2) === "BM") {
    return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)),
             colour: null };
  }
  if (bytes.length >= 30 && ascii(0, 4) === "RIFF" && ascii(8, 4) === "WEBP") {
    return webpSize(bytes, view, ascii(12, 4));
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) return jpegSize(bytes, view);
  return null;
}

function webpSize(bytes, view, chunk) {
  if (chunk === "VP8X") {
    const at = (i) => bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16);
    return { width: at(24) + 1, height: at(27) + 1, colour: null };
  }
  if (chunk === "VP8L") {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1, colour: null };
  }
  return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff,
           colour: null };
}

// A JPEG's size and component count from its first start-of-frame marker.
function jpegSize(bytes, view) {
  let at = 2;
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1];
    const length = view.getUint16(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: view.getUint16(at + 5), width: view.getUint16(at + 7),
               colour: bytes[at + 9] >= 3 };
    }
    at += 2 + length;
  }
  return null;
}

// The picture as the scorer takes it: uint8 [H * W * C], or a ScoreError saying why not.
async function modelPixels(model, file, bytes) {
  const declared = declaredSize(bytes);
  if (!declared) {
    throw new ScoreError(`${file.name}: not a PNG, JPEG, GIF, BMP or WebP image`);
  }
  if (declared.width * declared.height > MAX_IMAGE_PIXELS) {
    throw new ScoreError(`${file.name}: ${declared.width}×${declared.height} pixels, above ` +
      `the limit of ${MAX_IMAGE_PIXELS.toLocaleString("en")}`);
  }
  const [height, width, channels] = model.image_shape;
  if (declared.width !== width || declared.height !== height) {
    throw new ScoreError(`${file.name} is ${declared.width}×${declared.height}; this model ` +
      `scores ${width}×${height} images (serving/score.py resizes as the run did, if it did)`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes]),
      { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (error) {
    throw new ScoreError(`${file.name}: cannot read this image (the file is damaged?)`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { colorSpace: "srgb" });
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, width, height).data;
  const pixels = new Uint8Array(width * height * channels);
  let colour = declared.colour;
  for (let p = 0; p < width * height; p++) {
    const a = rgba[4 * p + 3];
    const [r, g, b] = [0, 1, 2].map((c) =>  // over white, as Pillow's alpha_composite
      Math.round((rgba[4 * p + c] * a + 255 * (255 - a)) / 255));
    if (colour === null && (r !== g || g !== b)) colour = true;
    if (channels === 1) pixels[p] = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    else pixels.set([r, g, b], 3 * p);
  }
  if (colour && channels === 1) {
    throw new ScoreError(`${file.name} is colour; this model's images are grayscale`);
  }
  return pixels;
}

async function scoreFile(page, file) {
  const model = page.model;
  const pixels = await modelPixels(model, file, new Uint8Array(await file.arrayBuffer()));
  page.scorerSession = page.scorerSession || loadScorer(model);
  const session = await page.scorerSession;
  const start = performance.now();
  const result = await session.run(
    { images: new ort.Tensor("uint8", pixels, [1, ...model.image_shape]) });
  const milliseconds = performance.now() - start;
  const found = { score: result.score.data[0], nll: result.neg_log_likelihood.data[0],
                  bitsPerDim: result.bits_per_dim.data[0],
                  flagged: Boolean(result.flagged.data[0]), map: result.pixel_map.data };
  showScore(model, file.name, pixels, found, milliseconds);
  return found;
}

async function loadScorer(model) {
  const response = await fetch(model.scorer.file);
  if (!response.ok) {
    throw new ScoreError(`${model.scorer.file} is missing (HTTP ${response.status}): ` +
      "copy the export's web/ folder whole");
  }
  return ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()),
                                     { executionProviders: ["wasm"] });
}

function showScore(model, name, pixels, found, milliseconds) {
  const [height, width, channels] = model.image_shape;
  const line = document.getElementById("score-line");
  line.textContent = `${name}: score ${found.score.toFixed(3)} — ` +
    (found.flagged ? "flagged: unusual for this model" : "not flagged") +
    ` (threshold ${model.scorer.threshold.toFixed(3)}); −log p(x) ` +
    `${found.nll.toFixed(1)} nats = ${found.bitsPerDim.toFixed(3)} bits/dim; ` +
    `${milliseconds.toFixed(0)} ms`;
  Object.assign(line.dataset, { score: found.score, nll: found.nll, flagged: found.flagged });
  const shown = document.getElementById("score-images");
  shown.replaceChildren();
  const image = new Float32Array(height * width * channels);
  pixels.forEach((v, i) => { image[i] = v / 255; });
  drawImages(shown, image, 1, model.image_shape);
  drawImages(shown, heatMap(found.map), 1, [height, width, 3]);
}

// −log p per pixel → RGB in [0, 1] on a logarithmic scale, as keras_vae/measure/score_pictures.py
// draws it: black at the map's likeliest 5 % of pixels, through red to yellow at its
// unlikeliest pixel.
function heatMap(map) {
  const sorted = Float32Array.from(map).sort();
  const low = sorted[Math.floor(0.05 * (sorted.length - 1))];
  const excess = Array.from(map, (v) => Math.log1p(Math.max(v - low, 0)));
  const top = Math.max(...excess, 1e-6);
  const rgb = new Float32Array(3 * map.length);
  excess.forEach((e, i) => {
    const level = e / top;
    rgb.set([Math.min(1, 2 * level), Math.max(0, Math.min(1, 2 * level - 1)), 0], 3 * i);
  });
  return rgb;
}

function setUpScoring(page) {
  if (!page.model.scorer) return;
  document.getElementById("scoring").hidden = false;
  const say = (text, state) => {
    const line = document.getElementById("score-line");
    line.textContent = text;
    line.dataset.state = state;
  };
  const handle = (file) => {
    if (!file) return;
    say(`Scoring ${file.name}…`, "busy");
    scoreFile(page, file)
      .then(() => { document.getElementById("score-line").dataset.state = "done"; })
      .catch((error) => say(error instanceof ScoreError ? error.message
        : `${file.name}: ${String(error.message || error).split("\n")[0]}`, "error"));
  };
  document.getElementById("score-file").addEventListener("change",
    (event) => handle(event.target.files[0]));
  const zone = document.getElementById("score-drop");
  zone.addEventListener("dragover", (event) => event.preventDefault());
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    handle(event.dataTransfer.files[0]);
  });
}
