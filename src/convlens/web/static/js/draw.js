// Drawing helpers shared by the three parts: pictures on canvases, atlas tiles,
// outlines on overlays, small DOM builders, error messages and "latest only" requests.
// Nothing here computes a number that the page shows; it only draws what the API sent.

/**
 * An element: el("div", {class: "x", dataset: {a: 1}}, child, "text").
 * Text is never parsed as HTML.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const imageCache = new Map();

/** Decode a PNG data URL once; the same URL gives the same HTMLImageElement. */
export function loadImage(url) {
  if (imageCache.has(url)) return imageCache.get(url);
  const promise = new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The server sent a picture the browser cannot decode."));
    image.src = url;
  });
  imageCache.set(url, promise);
  if (imageCache.size > 400) imageCache.delete(imageCache.keys().next().value);
  return promise;
}

/**
 * The on-screen size of one image pixel for an image of (height, width): whole pixels
 * when it is small, so that every pixel is a crisp square, ~target px on its longer side.
 */
export function pixelScale(height, width, target = 300) {
  const side = Math.max(height, width, 1);
  const scale = target / side;
  return scale >= 2 ? Math.floor(scale) : Math.max(scale, 0.25);
}

/**
 * Draw ``source`` (an image or a part of one: sx, sy, sw, sh) on ``canvas`` at its own
 * resolution, and show it ``scale`` times larger with crisp pixels.
 */
export function paint(canvas, image, scale, part = null) {
  const [sx, sy, sw, sh] = part || [0, 0, image.naturalWidth, image.naturalHeight];
  canvas.width = sw;
  canvas.height = sh;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.clearRect(0, 0, sw, sh);
  context.drawImage(image, sx, sy, sw, sh, 0, 0, sw, sh);
  if (scale) {
    canvas.style.width = `${Math.round(sw * scale)}px`;
    canvas.style.height = `${Math.round(sh * scale)}px`;
  }
}

/** Where tile k of a MapGrid lies in its atlas: [x, y, width, height] (see MapGrid's docstring). */
export function tileRect(grid, k) {
  const [tileH, tileW] = grid.tile;
  const row = Math.floor(k / grid.columns);
  const col = k % grid.columns;
  return [col * (tileW + grid.gap), row * (tileH + grid.gap), tileW, tileH];
}

/** A picture (input, filtered, pooled) with an overlay canvas on top for outlines. */
export class Stage {
  constructor(base, overlay) {
    this.base = base;
    this.overlay = overlay;
    this.height = 0;
    this.width = 0;
    this.scale = 1;
  }

  async show(picture, scale) {
    const image = await loadImage(picture.png);
    this.height = image.naturalHeight;
    this.width = image.naturalWidth;
    this.scale = scale;
    paint(this.base, image, scale);
    this.clear();
  }

  blank() {
    this.height = this.width = 0;
    this.base.width = this.base.height = 0;
    this.base.style.width = this.base.style.height = "0px";
    this.clear();
  }

  /** Size the overlay to the picture's displayed size (device pixels) and clear it. */
  clear() {
    const box = this.base.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(box.width * ratio));
    const h = Math.max(1, Math.round(box.height * ratio));
    if (this.overlay.width !== w || this.overlay.height !== h) {
      this.overlay.width = w;
      this.overlay.height = h;
    }
    this.overlay.style.width = `${box.width}px`;
    this.overlay.style.height = `${box.height}px`;
    this.overlay.getContext("2d").clearRect(0, 0, w, h);
  }

  /** The (row, col) of the picture pixel under a pointer event, or null outside it. */
  pixelAt(event) {
    if (!this.width || !this.height) return null;
    const box = this.base.getBoundingClientRect();
    const col = Math.floor(((event.clientX - box.left) / box.width) * this.width);
    const row = Math.floor(((event.clientY - box.top) / box.height) * this.height);
    if (row < 0 || col < 0 || row >= this.height || col >= this.width) return null;
    return [row, col];
  }

  /** Outline the cells rows top..top+h-1, cols left..left+w-1 (they may lie outside: padding). */
  outline(top, left, h, w, options = {}) {
    const { color = "#ff3b30", fill = null, width = 2, dashed = false, ring = true } = options;
    const context = this.overlay.getContext("2d");
    const sx = this.overlay.width / Math.max(this.width, 1);
    const sy = this.overlay.height / Math.max(this.height, 1);
    const ratio = window.devicePixelRatio || 1;
    const line = width * ratio;
    const x = left * sx;
    const y = top * sy;
    const boxW = w * sx;
    const boxH = h * sy;
    context.save();
    if (fill) {
      context.fillStyle = fill;
      context.fillRect(x, y, boxW, boxH);
    }
    context.strokeStyle = color;
    context.lineWidth = line;
    context.setLineDash(dashed ? [4 * ratio, 3 * ratio] : []);
    // Keep the line inside the canvas when the window runs into the padding.
    const x0 = Math.max(x, line / 2);
    const y0 = Math.max(y, line / 2);
    const x1 = Math.min(x + boxW, this.overlay.width - line / 2);
    const y1 = Math.min(y + boxH, this.overlay.height - line / 2);
    if (x1 > x0 && y1 > y0) context.strokeRect(x0, y0, x1 - x0, y1 - y0);
    // On a large image a window is a few screen pixels: circle it so the eye finds it.
    const smallest = 10 * ratio;
    if (ring && (boxW < smallest || boxH < smallest)) {
      const radius = Math.max(boxW, boxH, smallest) / 2 + 6 * ratio;
      context.lineWidth = 2 * ratio;
      context.setLineDash([]);
      context.beginPath();
      context.arc(x + boxW / 2, y + boxH / 2, radius, 0, 2 * Math.PI);
      context.stroke();
    }
    context.restore();
  }
}

/** Show ``message`` in an error element (role="alert"), or hide it when message is empty. */
export function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/**
 * Requests where only the latest matters: at most one runs at a time, a newer one replaces
 * any waiting one, and ``isLatest()`` tells a finished one whether its answer is still wanted.
 */
export function latestOnly() {
  let running = false;
  let waiting = null;
  let generation = 0;
  async function pump() {
    if (running || !waiting) return;
    running = true;
    const job = waiting;
    waiting = null;
    try {
      await job.task(() => job.generation === generation);
    } catch (error) {
      console.warn(error);
    } finally {
      running = false;
      pump();
    }
  }
  return (task) => {
    generation += 1;
    waiting = { task, generation };
    pump();
  };
}

/** A number as the API sent it (already rounded to 4 significant digits), without "-0". */
export function numberText(value) {
  if (value === null || value === undefined) return "";
  if (Object.is(value, -0)) return "0";
  return String(value);
}

/** A small table of numbers; ``mark`` is [i, j] of a cell to highlight. */
export function numberGrid(rows, { caption = "", mark = null, testid = null } = {}) {
  const table = el("table", { class: "number-grid", "data-testid": testid });
  if (caption) table.append(el("caption", { text: caption }));
  const body = el("tbody");
  rows.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((value, j) => {
      const chosen = mark && mark[0] === i && mark[1] === j;
      tr.append(el("td", { class: chosen ? "chosen" : null, text: numberText(value) }));
    });
    body.append(tr);
  });
  table.append(body);
  return table;
}

/** A percentage of a probability for display: 0.9312 -> "93.1%". */
export function percent(probability) {
  return `${(probability * 100).toFixed(1)}%`;
}
