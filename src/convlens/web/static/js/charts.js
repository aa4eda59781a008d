// Line charts on a canvas, for the training curves and the comparison of runs.
// Drawing only: every number comes from the server.

export const COLOURS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#f5b800", "#0ca678", "#d6336c", "#495057"];

const LEGEND_ROW = 16; // px between legend rows
const LEGEND_FONT = "11px system-ui, sans-serif";
const TITLE_FONT = "600 12px system-ui, sans-serif";

/** ``text`` cut with an ellipsis to fit ``width`` px in the context's font. */
function fitted(c, text, width) {
  if (c.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && c.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * The legend laid out under the title, left to right, in as many rows as it needs: each
 * item {name, shown, colour, x, y, w} (y: the row's text baseline); a name wider than the
 * chart is cut with an ellipsis (the full name is in the table beside the chart).
 */
function legendLayout(c, series, left, right, top) {
  c.font = LEGEND_FONT;
  const items = [];
  let x = left;
  let y = top;
  series.forEach((s, index) => {
    const shown = fitted(c, s.name, right - left - 15);
    const w = 15 + c.measureText(shown).width;
    if (x > left && x + w > right) {
      x = left;
      y += LEGEND_ROW;
    }
    items.push({ name: s.name, shown, colour: s.colour || COLOURS[index % COLOURS.length], x, y, w });
    x += w + 14;
  });
  return items;
}

/**
 * Draw ``series`` ([{name, colour, points: [[x, y], ...], dots: bool}]) on ``canvas``.
 * ``options``: {title, xLabel, yMin, yMax, percent}. The y range is fitted to the data
 * unless given; the canvas keeps its CSS size and draws at the device's resolution. The
 * title stands on the first line, the legend on the lines under it (never over it), and
 * canvas.dataset.layout records where each was drawn: {title: [x, y, w, h], legend:
 * [{name, shown, box: [x, y, w, h]}]} in CSS pixels.
 */
export function lineChart(canvas, series, options = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 420;
  // The height the style sheet gives, kept: a chart with more legend rows grows from it.
  const baseHeight = Number(canvas.dataset.baseHeight) || canvas.clientHeight || 220;
  canvas.dataset.baseHeight = String(baseHeight);
  const c = canvas.getContext("2d");
  const pad = { left: 48, right: 12, top: 24, bottom: 30 };
  const legend = legendLayout(c, series, 8, width - pad.right, 34);
  const rows = legend.length ? (legend[legend.length - 1].y - 34) / LEGEND_ROW + 1 : 0;
  pad.top = 30 + rows * LEGEND_ROW; // the top tick's label stands clear of the legend
  const height = Math.max(baseHeight, pad.top + pad.bottom + 80); // the plot keeps some height
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  c.setTransform(ratio, 0, 0, ratio, 0, 0);
  c.clearRect(0, 0, width, height);
  const all = series.flatMap((s) => s.points);
  c.fillStyle = "#1b2230";
  c.font = TITLE_FONT;
  const title = options.title || "";
  c.fillText(title, 8, 15);
  canvas.dataset.layout = JSON.stringify({
    title: [8, 3, c.measureText(title).width, 15],
    legend: legend.map((item) => ({ name: item.name, shown: item.shown, box: [item.x, item.y - 10, item.w, 12] })),
  });
  if (!all.length) {
    c.fillStyle = "#8a93a3";
    c.font = "12px system-ui, sans-serif";
    c.fillText("no points yet", pad.left, height / 2);
    return;
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (options.xMin !== undefined) x0 = options.xMin;
  if (x1 === x0) x1 = x0 + 1;
  let y0 = options.yMin !== undefined ? options.yMin : Math.min(...ys);
  let y1 = options.yMax !== undefined ? options.yMax : Math.max(...ys);
  if (y1 - y0 < 1e-9) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const spanY = y1 - y0;
  if (options.yMin === undefined) y0 -= spanY * 0.05;
  if (options.yMax === undefined) y1 += spanY * 0.05;
  if (options.percent) {
    y0 = Math.max(0, y0);
    y1 = Math.min(1, y1);
  }
  const X = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const Y = (y) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  // Axes and ticks.
  c.strokeStyle = "#e1e5ee";
  c.fillStyle = "#5d6677";
  c.font = "11px system-ui, sans-serif";
  c.lineWidth = 1;
  for (let i = 0; i <= 4; i += 1) {
    const y = y0 + ((y1 - y0) * i) / 4;
    c.beginPath();
    c.moveTo(pad.left, Y(y));
    c.lineTo(width - pad.right, Y(y));
    c.stroke();
    const digits = y1 - y0 < 0.05 ? 1 : 0; // a narrow range needs a decimal to tell ticks apart
    const text = options.percent ? `${(y * 100).toFixed(digits)}%` : y.toFixed(y1 - y0 < 0.1 ? 3 : 2);
    c.fillText(text, 4, Y(y) + 4);
  }
  c.fillText(options.xLabel || "", width - pad.right - c.measureText(options.xLabel || "").width, height - 8);
  c.fillText(String(Math.round(x0)), pad.left, height - 8);
  // Lines, then dots, then the legend.
  series.forEach((s, index) => {
    const colour = s.colour || COLOURS[index % COLOURS.length];
    c.strokeStyle = colour;
    c.fillStyle = colour;
    c.lineWidth = 2;
    c.setLineDash(s.dashed ? [5, 4] : []);
    if (!s.dots || s.points.length > 1) {
      c.beginPath();
      s.points.forEach(([x, y], i) => (i ? c.lineTo(X(x), Y(y)) : c.moveTo(X(x), Y(y))));
      c.stroke();
    }
    c.setLineDash([]);
    if (s.dots) {
      for (const [x, y] of s.points) {
        c.beginPath();
        c.arc(X(x), Y(y), 3.5, 0, 2 * Math.PI);
        c.fill();
      }
    }
  });
  c.font = LEGEND_FONT;
  for (const item of legend) {
    c.fillStyle = item.colour;
    c.fillRect(item.x, item.y - 6, 12, 4);
    c.fillStyle = "#1b2230";
    c.fillText(item.shown, item.x + 15, item.y);
  }
}
